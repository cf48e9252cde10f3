-- 056: delivery of incidents to webhooks (Slack-compatible JSON). A webhook receives the incidents of one
-- model (or of every model when model is NULL) from a severity up; every new or reopened incident gets one
-- delivery row per matching webhook in the transaction that records it (an outbox), sent afterwards with
-- retries; the row keeps the outcome, so failures show on the Automation page.
CREATE SEQUENCE alert_webhooks_seq;
CREATE TABLE alert_webhooks (
    id            BIGINT PRIMARY KEY DEFAULT nextval('alert_webhooks_seq'),
    model         VARCHAR,                      -- NULL: every model
    url           VARCHAR NOT NULL,
    min_severity  VARCHAR NOT NULL,             -- info | warning | critical
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMP NOT NULL,
    created_by    VARCHAR NOT NULL
);

CREATE SEQUENCE alert_deliveries_seq;
CREATE TABLE alert_deliveries (
    id            BIGINT PRIMARY KEY DEFAULT nextval('alert_deliveries_seq'),
    alert_id      BIGINT NOT NULL,
    webhook_id    BIGINT NOT NULL,
    event         VARCHAR NOT NULL,             -- new | reopened | test
    status        VARCHAR NOT NULL,             -- pending | delivered | failed
    attempts      INTEGER NOT NULL DEFAULT 0,
    http_status   INTEGER,
    last_error    VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP
);
