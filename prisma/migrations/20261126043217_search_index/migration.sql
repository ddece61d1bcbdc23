-- AlterEnum
ALTER TYPE "TaskKind" ADD VALUE IF NOT EXISTS 'REINDEX_COURSE';

-- AlterTable
ALTER TABLE "Chunk" ADD COLUMN     "tokenCount" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "Course" ADD COLUMN     "searchVersion" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "ChunkTerm" (
    "courseId" UUID NOT NULL,
    "termId" INTEGER NOT NULL,
    "chunkId" TEXT NOT NULL,
    "documentId" UUID NOT NULL,
    "tf" SMALLINT NOT NULL,
    "dl" INTEGER NOT NULL,

    CONSTRAINT "ChunkTerm_pkey" PRIMARY KEY ("courseId","termId","chunkId")
);

-- CreateTable
CREATE TABLE "ChunkEmbedding" (
    "chunkId" TEXT NOT NULL,
    "courseId" UUID NOT NULL,
    "documentId" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "vector" REAL[],

    CONSTRAINT "ChunkEmbedding_pkey" PRIMARY KEY ("chunkId")
);

-- CreateIndex
CREATE INDEX "ChunkTerm_chunkId_idx" ON "ChunkTerm"("chunkId");

-- CreateIndex
CREATE INDEX "ChunkEmbedding_courseId_model_idx" ON "ChunkEmbedding"("courseId", "model");

-- AddForeignKey
ALTER TABLE "ChunkTerm" ADD CONSTRAINT "ChunkTerm_chunkId_fkey" FOREIGN KEY ("chunkId") REFERENCES "Chunk"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ChunkEmbedding" ADD CONSTRAINT "ChunkEmbedding_chunkId_fkey" FOREIGN KEY ("chunkId") REFERENCES "Chunk"("id") ON DELETE CASCADE ON UPDATE CASCADE;
