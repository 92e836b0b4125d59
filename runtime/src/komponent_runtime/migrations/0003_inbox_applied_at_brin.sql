-- The inbox is pruned by age (inbox.prune): rows older than the keep time go, a batch at a time. A BRIN
-- index finds them: rows are appended in time order, so each block range's min/max of applied_at is narrow,
-- and the index costs next to nothing on the insert path every consumed event takes (a btree would add a
-- second index insert per event).
CREATE INDEX IF NOT EXISTS inbox_applied_at ON inbox USING brin (applied_at);
