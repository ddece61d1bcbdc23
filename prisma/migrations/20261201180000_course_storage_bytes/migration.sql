-- The bytes a course's documents take, kept by a trigger on "Document": the course storage quota
-- was a SUM over the course's documents under a per-course lock in every ingestDocument, a cost
-- that grew with the course and made a course's pastes wait for one another (four round trips
-- each). Now the quota is checked against this column in the statement that writes the document
-- (the course row locked for that statement only).
ALTER TABLE "Course" ADD COLUMN "storageBytes" BIGINT NOT NULL DEFAULT 0;

UPDATE "Course" c SET "storageBytes" = d.total
FROM (SELECT "courseId", sum("sizeBytes") AS total FROM "Document" GROUP BY "courseId") d
WHERE d."courseId" = c.id;

CREATE FUNCTION "Course_storage_bytes"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE "Course" SET "storageBytes" = "storageBytes" - OLD."sizeBytes" WHERE id = OLD."courseId";
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE "Course" SET "storageBytes" = "storageBytes" + NEW."sizeBytes" WHERE id = NEW."courseId";
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER "Document_storage_bytes" AFTER INSERT OR DELETE OR UPDATE OF "sizeBytes", "courseId" ON "Document"
  FOR EACH ROW EXECUTE FUNCTION "Course_storage_bytes"();
