-- CreateEnum
CREATE TYPE "ExamStatus" AS ENUM ('GENERATING', 'DRAFT', 'PUBLISHED', 'FAILED');

-- CreateEnum
CREATE TYPE "QuestionType" AS ENUM ('MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK');

-- CreateEnum
CREATE TYPE "ExamDifficulty" AS ENUM ('EASY', 'MEDIUM', 'HARD');

-- CreateEnum
CREATE TYPE "ShowAnswers" AS ENUM ('AFTER_SUBMIT', 'AFTER_CLOSE', 'NEVER');

-- CreateEnum
CREATE TYPE "QuestionOrigin" AS ENUM ('GENERATED', 'REGENERATED', 'EDITED', 'ADDED');

-- CreateEnum
CREATE TYPE "AttemptStatus" AS ENUM ('IN_PROGRESS', 'SUBMITTED');

-- AlterEnum
ALTER TYPE "TaskKind" ADD VALUE 'GENERATE_EXAM';

-- AlterTable
ALTER TABLE "Exam" ADD COLUMN     "attemptsAllowed" INTEGER DEFAULT 1,
ADD COLUMN     "closesAt" TIMESTAMPTZ(3),
ADD COLUMN     "completionTokens" INTEGER,
ADD COLUMN     "difficulty" "ExamDifficulty" NOT NULL DEFAULT 'MEDIUM',
ADD COLUMN     "documentIds" UUID[],
ADD COLUMN     "engine" TEXT,
ADD COLUMN     "errorCode" TEXT,
ADD COLUMN     "errorMessage" TEXT,
ADD COLUMN     "generation" JSONB,
ADD COLUMN     "model" TEXT,
ADD COLUMN     "promptTokens" INTEGER,
ADD COLUMN     "questionCount" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "seed" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "showAnswers" "ShowAnswers" NOT NULL DEFAULT 'AFTER_SUBMIT',
ADD COLUMN     "status" "ExamStatus" NOT NULL DEFAULT 'DRAFT',
ADD COLUMN     "taskId" UUID,
ADD COLUMN     "timeLimitMinutes" INTEGER,
ADD COLUMN     "types" "QuestionType"[],
ADD COLUMN     "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- CreateTable
CREATE TABLE "ExamQuestion" (
    "id" UUID NOT NULL,
    "examId" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "type" "QuestionType" NOT NULL,
    "stem" TEXT NOT NULL,
    "options" TEXT[],
    "answerIndex" INTEGER,
    "answerBool" BOOLEAN,
    "answerText" TEXT,
    "acceptedAnswers" TEXT[],
    "keyTerms" TEXT[],
    "explanation" TEXT NOT NULL,
    "chunkId" TEXT NOT NULL,
    "documentId" UUID NOT NULL,
    "documentTitle" TEXT NOT NULL,
    "pageStart" INTEGER NOT NULL,
    "pageEnd" INTEGER NOT NULL,
    "page" INTEGER NOT NULL,
    "pageExact" BOOLEAN NOT NULL DEFAULT true,
    "sentence" TEXT NOT NULL,
    "origin" "QuestionOrigin" NOT NULL DEFAULT 'GENERATED',
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExamQuestion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ExamAttempt" (
    "id" UUID NOT NULL,
    "examId" UUID NOT NULL,
    "userId" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "status" "AttemptStatus" NOT NULL DEFAULT 'IN_PROGRESS',
    "startedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deadline" TIMESTAMPTZ(3),
    "submittedAt" TIMESTAMPTZ(3),
    "autoSubmitted" BOOLEAN NOT NULL DEFAULT false,
    "score" DOUBLE PRECISION,
    "maxScore" DOUBLE PRECISION,

    CONSTRAINT "ExamAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ExamAnswer" (
    "attemptId" UUID NOT NULL,
    "questionId" UUID NOT NULL,
    "value" JSONB,
    "answeredAt" TIMESTAMPTZ(3),
    "correct" BOOLEAN,
    "score" DOUBLE PRECISION,
    "feedback" TEXT,
    "matchedKeyTerms" TEXT[],
    "missingKeyTerms" TEXT[],

    CONSTRAINT "ExamAnswer_pkey" PRIMARY KEY ("attemptId","questionId")
);

-- CreateIndex
CREATE INDEX "ExamQuestion_examId_position_idx" ON "ExamQuestion"("examId", "position");

-- CreateIndex
CREATE INDEX "ExamAttempt_examId_status_idx" ON "ExamAttempt"("examId", "status");

-- CreateIndex
CREATE INDEX "ExamAttempt_userId_idx" ON "ExamAttempt"("userId");

-- CreateIndex
CREATE UNIQUE INDEX "ExamAttempt_examId_userId_number_key" ON "ExamAttempt"("examId", "userId", "number");

-- CreateIndex
CREATE INDEX "ExamAnswer_questionId_idx" ON "ExamAnswer"("questionId");

-- CreateIndex
CREATE UNIQUE INDEX "Exam_taskId_key" ON "Exam"("taskId");

-- AddForeignKey
ALTER TABLE "ExamQuestion" ADD CONSTRAINT "ExamQuestion_examId_fkey" FOREIGN KEY ("examId") REFERENCES "Exam"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExamAttempt" ADD CONSTRAINT "ExamAttempt_examId_fkey" FOREIGN KEY ("examId") REFERENCES "Exam"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExamAnswer" ADD CONSTRAINT "ExamAnswer_attemptId_fkey" FOREIGN KEY ("attemptId") REFERENCES "ExamAttempt"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExamAnswer" ADD CONSTRAINT "ExamAnswer_questionId_fkey" FOREIGN KEY ("questionId") REFERENCES "ExamQuestion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Exams published before statuses existed are PUBLISHED.
UPDATE "Exam" SET "status" = 'PUBLISHED' WHERE "publishedAt" IS NOT NULL;
