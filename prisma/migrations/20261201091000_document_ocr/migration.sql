-- OCR: which pages of a document were read by OCR, how confidently, and which were skipped.
-- AlterTable
ALTER TABLE "Document" ADD COLUMN     "ocrConfidence" DOUBLE PRECISION,
ADD COLUMN     "ocrPages" INTEGER[] DEFAULT ARRAY[]::INTEGER[],
ADD COLUMN     "ocrSkippedPages" INTEGER[] DEFAULT ARRAY[]::INTEGER[];

