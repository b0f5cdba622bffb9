BEGIN;
SELECT count(*) FROM pgmq.read_grouped('bench_fifo', 30, 10);
ROLLBACK;
