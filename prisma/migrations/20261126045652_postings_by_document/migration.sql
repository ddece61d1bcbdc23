-- CreateIndex
CREATE INDEX "ChunkEmbedding_documentId_idx" ON "ChunkEmbedding"("documentId");

-- CreateIndex
CREATE INDEX "ChunkTerm_documentId_idx" ON "ChunkTerm"("documentId");
