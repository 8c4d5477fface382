"""The notifier process: order events and stock alerts from the notifications queue become
emails (SES) and text messages (SNS), each attempt recorded in the notification log."""
