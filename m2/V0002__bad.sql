-- dbmux:no-transaction
CREATE INDEX CONCURRENTLY ci ON parent (name);
SELECT nope;
