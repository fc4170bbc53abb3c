-- database batchrunner
CREATE DATABASE IF NOT EXISTS `batchrunner`;

-- drop table indexes_mmc_sweep_e8ffa6
DROP TABLE IF EXISTS `indexes_mmc_sweep_e8ffa6`;

-- table indexes_mmc_sweep_e8ffa6
CREATE EXTERNAL TABLE `indexes_mmc_sweep_e8ffa6` (
  `namespace` string,
  `index` bigint,
  `attempt` bigint,
  `repeat` bigint,
  `seed` bigint,
  `arrival_rate` double,
  `servers` bigint,
  `status` string,
  `exit_code` bigint,
  `reason` string,
  `started_at` timestamp,
  `finished_at` timestamp,
  `duration_seconds` double,
  `backend` string,
  `output_files` bigint,
  `output_bytes` bigint,
  `output_rows` bigint,
  `output_malformed` bigint,
  `output_note` string,
  `point_key` string,
  `reused_from` string,
  `vcpu_seconds` double,
  `gib_seconds` double,
  `billed_vcpu_seconds` double,
  `billed_gib_seconds` double,
  `capacity` string
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/run=${run}/compacted/indexes/'
);

-- drop table results_mmc_sweep_e8ffa6
DROP TABLE IF EXISTS `results_mmc_sweep_e8ffa6`;

-- table results_mmc_sweep_e8ffa6
CREATE EXTERNAL TABLE `results_mmc_sweep_e8ffa6` (
  `namespace` string,
  `index` bigint,
  `repeat` bigint,
  `seed` bigint,
  `arrival_rate` double,
  `servers` bigint,
  `mean_wait` double,
  `served` bigint,
  `label` string
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/run=${run}/compacted/results/'
);

-- drop table indexes_mmc_sweep_bffbbe
DROP TABLE IF EXISTS `indexes_mmc_sweep_bffbbe`;

-- table indexes_mmc_sweep_bffbbe
CREATE EXTERNAL TABLE `indexes_mmc_sweep_bffbbe` (
  `namespace` string,
  `index` bigint,
  `attempt` bigint,
  `repeat` bigint,
  `seed` bigint,
  `arrival_rate` double,
  `servers` bigint,
  `status` string,
  `exit_code` bigint,
  `reason` string,
  `started_at` timestamp,
  `finished_at` timestamp,
  `duration_seconds` double,
  `backend` string,
  `output_files` bigint,
  `output_bytes` bigint,
  `output_rows` bigint,
  `output_malformed` bigint,
  `output_note` string,
  `point_key` string,
  `reused_from` string,
  `vcpu_seconds` double,
  `gib_seconds` double,
  `billed_vcpu_seconds` double,
  `billed_gib_seconds` double,
  `capacity` string
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/run=${run}/compacted/indexes/'
);

-- drop table results_mmc_sweep_bffbbe
DROP TABLE IF EXISTS `results_mmc_sweep_bffbbe`;

-- table results_mmc_sweep_bffbbe
CREATE EXTERNAL TABLE `results_mmc_sweep_bffbbe` (
  `namespace` string,
  `index` bigint,
  `repeat` bigint,
  `seed` bigint,
  `arrival_rate` double,
  `servers` bigint,
  `mean_wait` double,
  `served` double,
  `converged` boolean
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=mmc-sweep/run=${run}/compacted/results/'
);

-- drop table indexes_pi_estimate
DROP TABLE IF EXISTS `indexes_pi_estimate`;

-- table indexes_pi_estimate
CREATE EXTERNAL TABLE `indexes_pi_estimate` (
  `namespace` string,
  `index` bigint,
  `attempt` bigint,
  `repeat` bigint,
  `seed` bigint,
  `status` string,
  `exit_code` bigint,
  `reason` string,
  `started_at` timestamp,
  `finished_at` timestamp,
  `duration_seconds` double,
  `backend` string,
  `output_files` bigint,
  `output_bytes` bigint,
  `output_rows` bigint,
  `output_malformed` bigint,
  `output_note` string,
  `point_key` string,
  `reused_from` string,
  `vcpu_seconds` double,
  `gib_seconds` double,
  `billed_vcpu_seconds` double,
  `billed_gib_seconds` double,
  `capacity` string
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=pi-estimate/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=pi-estimate/run=${run}/compacted/indexes/'
);

-- drop table results_pi_estimate
DROP TABLE IF EXISTS `results_pi_estimate`;

-- table results_pi_estimate
CREATE EXTERNAL TABLE `results_pi_estimate` (
  `namespace` string,
  `index` bigint,
  `repeat` bigint,
  `seed` bigint,
  `estimate` double,
  `samples` bigint,
  `servers` string
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=pi-estimate/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=pi-estimate/run=${run}/compacted/results/'
);

-- drop table indexes_pi_grid
DROP TABLE IF EXISTS `indexes_pi_grid`;

-- table indexes_pi_grid
CREATE EXTERNAL TABLE `indexes_pi_grid` (
  `namespace` string,
  `index` bigint,
  `attempt` bigint,
  `repeat` bigint,
  `seed` bigint,
  `servers` string,
  `status` string,
  `exit_code` bigint,
  `reason` string,
  `started_at` timestamp,
  `finished_at` timestamp,
  `duration_seconds` double,
  `backend` string,
  `output_files` bigint,
  `output_bytes` bigint,
  `output_rows` bigint,
  `output_malformed` bigint,
  `output_note` string,
  `point_key` string,
  `reused_from` string,
  `vcpu_seconds` double,
  `gib_seconds` double,
  `billed_vcpu_seconds` double,
  `billed_gib_seconds` double,
  `capacity` string
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=pi-grid/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=pi-grid/run=${run}/compacted/indexes/'
);

-- drop table results_pi_grid
DROP TABLE IF EXISTS `results_pi_grid`;

-- table results_pi_grid
CREATE EXTERNAL TABLE `results_pi_grid` (
  `namespace` string,
  `index` bigint,
  `repeat` bigint,
  `seed` bigint,
  `servers` string,
  `estimate` double
)
PARTITIONED BY (`run` string)
STORED AS PARQUET
LOCATION 's3://sweeps-bucket/team/results/batchjob=pi-grid/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.run.type' = 'injected',
  'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=pi-grid/run=${run}/compacted/results/'
);

-- view indexes
CREATE OR REPLACE VIEW "indexes" AS
SELECT 'mmc-sweep' AS "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", "arrival_rate", CAST("servers" AS varchar) AS "servers", "status", "exit_code", "reason", "started_at", "finished_at", "duration_seconds", "backend", "output_files", "output_bytes", "output_rows", "output_malformed", "output_note", "point_key", "reused_from", "vcpu_seconds", "gib_seconds", "billed_vcpu_seconds", "billed_gib_seconds", "capacity"
FROM "indexes_mmc_sweep_e8ffa6"
WHERE "run" IN ('r0123456789a')
UNION ALL
SELECT 'mmc-sweep' AS "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", "arrival_rate", CAST("servers" AS varchar) AS "servers", "status", "exit_code", "reason", "started_at", "finished_at", "duration_seconds", "backend", "output_files", "output_bytes", "output_rows", "output_malformed", "output_note", "point_key", "reused_from", "vcpu_seconds", "gib_seconds", "billed_vcpu_seconds", "billed_gib_seconds", "capacity"
FROM "indexes_mmc_sweep_bffbbe"
WHERE "run" IN ('r0123456789b')
UNION ALL
SELECT 'pi-estimate' AS "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", CAST(NULL AS double) AS "arrival_rate", CAST(NULL AS varchar) AS "servers", "status", "exit_code", "reason", "started_at", "finished_at", "duration_seconds", "backend", "output_files", "output_bytes", "output_rows", "output_malformed", "output_note", "point_key", "reused_from", "vcpu_seconds", "gib_seconds", "billed_vcpu_seconds", "billed_gib_seconds", "capacity"
FROM "indexes_pi_estimate"
WHERE "run" IN ('rfedcba98765')
UNION ALL
SELECT 'pi-grid' AS "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", CAST(NULL AS double) AS "arrival_rate", "servers", "status", "exit_code", "reason", "started_at", "finished_at", "duration_seconds", "backend", "output_files", "output_bytes", "output_rows", "output_malformed", "output_note", "point_key", "reused_from", "vcpu_seconds", "gib_seconds", "billed_vcpu_seconds", "billed_gib_seconds", "capacity"
FROM "indexes_pi_grid"
WHERE "run" IN ('r00000000001');

-- view results
CREATE OR REPLACE VIEW "results" AS
SELECT 'mmc-sweep' AS "batchjob", "namespace", "run", "index", "repeat", "seed", "arrival_rate", CAST("servers" AS varchar) AS "servers", "mean_wait", CAST("served" AS double) AS "served", "label", CAST(NULL AS boolean) AS "converged", CAST(NULL AS double) AS "estimate", CAST(NULL AS bigint) AS "samples", CAST(NULL AS varchar) AS "output_servers"
FROM "results_mmc_sweep_e8ffa6"
WHERE "run" IN ('r0123456789a')
UNION ALL
SELECT 'mmc-sweep' AS "batchjob", "namespace", "run", "index", "repeat", "seed", "arrival_rate", CAST("servers" AS varchar) AS "servers", "mean_wait", "served", CAST(NULL AS varchar) AS "label", "converged", CAST(NULL AS double) AS "estimate", CAST(NULL AS bigint) AS "samples", CAST(NULL AS varchar) AS "output_servers"
FROM "results_mmc_sweep_bffbbe"
WHERE "run" IN ('r0123456789b')
UNION ALL
SELECT 'pi-estimate' AS "batchjob", "namespace", "run", "index", "repeat", "seed", CAST(NULL AS double) AS "arrival_rate", CAST(NULL AS varchar) AS "servers", CAST(NULL AS double) AS "mean_wait", CAST(NULL AS double) AS "served", CAST(NULL AS varchar) AS "label", CAST(NULL AS boolean) AS "converged", "estimate", "samples", "servers" AS "output_servers"
FROM "results_pi_estimate"
WHERE "run" IN ('rfedcba98765')
UNION ALL
SELECT 'pi-grid' AS "batchjob", "namespace", "run", "index", "repeat", "seed", CAST(NULL AS double) AS "arrival_rate", "servers", CAST(NULL AS double) AS "mean_wait", CAST(NULL AS double) AS "served", CAST(NULL AS varchar) AS "label", CAST(NULL AS boolean) AS "converged", "estimate", CAST(NULL AS bigint) AS "samples", CAST(NULL AS varchar) AS "output_servers"
FROM "results_pi_grid"
WHERE "run" IN ('r00000000001');

