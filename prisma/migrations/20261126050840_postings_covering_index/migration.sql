-- A covering index for BM25 at query time: each query term's postings (chunk, tf, length) and its
-- document frequency are read from the index alone (index-only scans), not from the table.
-- Prisma's schema language cannot express INCLUDE, so this index lives only here; `prisma migrate
-- diff` will list it as drift, which is expected.
CREATE INDEX "ChunkTerm_courseId_termId_covering" ON "ChunkTerm"("courseId", "termId") INCLUDE ("chunkId", "tf", "dl", "documentId");
