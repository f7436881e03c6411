import { inject } from "vitest";

// Every integration test file sees the test environment's variables
// (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, S3_*, KUBECONFIG, PROMETHEUS_URL).
Object.assign(process.env, inject("testenv"));
