-- database batchrunner
CREATE DATABASE IF NOT EXISTS `batchrunner`;

-- view indexes
CREATE OR REPLACE VIEW "indexes" AS
SELECT CAST(NULL AS varchar) AS "batchjob", CAST(NULL AS varchar) AS "namespace", CAST(NULL AS varchar) AS "run", CAST(NULL AS bigint) AS "index", CAST(NULL AS bigint) AS "attempt", CAST(NULL AS bigint) AS "repeat", CAST(NULL AS bigint) AS "seed", CAST(NULL AS varchar) AS "status", CAST(NULL AS bigint) AS "exit_code", CAST(NULL AS varchar) AS "reason", CAST(NULL AS timestamp) AS "started_at", CAST(NULL AS timestamp) AS "finished_at", CAST(NULL AS double) AS "duration_seconds", CAST(NULL AS varchar) AS "backend", CAST(NULL AS bigint) AS "output_files", CAST(NULL AS bigint) AS "output_bytes", CAST(NULL AS bigint) AS "output_rows", CAST(NULL AS bigint) AS "output_malformed", CAST(NULL AS varchar) AS "output_note", CAST(NULL AS varchar) AS "point_key", CAST(NULL AS varchar) AS "reused_from", CAST(NULL AS double) AS "vcpu_seconds", CAST(NULL AS double) AS "gib_seconds", CAST(NULL AS double) AS "billed_vcpu_seconds", CAST(NULL AS double) AS "billed_gib_seconds", CAST(NULL AS varchar) AS "capacity"
WHERE 1 = 0;

-- view results
CREATE OR REPLACE VIEW "results" AS
SELECT CAST(NULL AS varchar) AS "batchjob", CAST(NULL AS varchar) AS "namespace", CAST(NULL AS varchar) AS "run", CAST(NULL AS bigint) AS "index", CAST(NULL AS bigint) AS "repeat", CAST(NULL AS bigint) AS "seed"
WHERE 1 = 0;

