-- A plain GET of the URL given to wrk (menu scenarios).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
