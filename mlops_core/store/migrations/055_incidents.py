"""055: alerts become incidents: one row per rule and subject, seen in several windows, with a life cycle.

Adds to ``alerts`` the incident's key (rule and subject), subject, title, status (open,
acknowledged, resolved; ``merged`` for the alerts folded into an incident here), first and
last seen, the number of windows it was seen in, its current value (as a number and as text),
when it was snoozed until and by whom, who resolved it, how often it was reopened.

Alerts raised before (one per rule and window) are folded: per model and incident key the
newest alert becomes the incident (first seen = the oldest alert's window, windows = their
number, acknowledged when the newest was) and the older ones are kept with status ``merged``
(never listed, never deleted).
"""
from __future__ import annotations

import json

COLUMNS = [
    ("incident_key", "VARCHAR"), ("subject", "VARCHAR"), ("title", "VARCHAR"),
    ("status", "VARCHAR DEFAULT 'open'"), ("first_seen", "TIMESTAMP"), ("last_seen", "TIMESTAMP"),
    ("windows", "INTEGER DEFAULT 1"), ("current_value", "DOUBLE"), ("current_text", "VARCHAR"),
    ("snoozed_until", "TIMESTAMP"), ("snoozed_by", "VARCHAR"), ("resolved_at", "TIMESTAMP"),
    ("resolved_by", "VARCHAR"), ("reopened", "INTEGER DEFAULT 0"), ("updated_at", "TIMESTAMP"),
]
#: Titles of the folded alerts until the next monitoring run writes its own.
TITLES = {"metric_below": "Metric below its threshold", "metric_above": "Metric above its threshold",
          "drift_share_above": "Share of drifted features above its threshold", "feature_drift": "Drift",
          "validation_anomalies": "Validation anomalies", "no_traffic": "No predictions logged",
          "run_anomaly": "Unusual pipeline run", "policy_trigger": "Retrain recommended by the policy"}


def _key_and_subject(kind: str, rule_id, dedup_key: str | None, details: dict, targets: dict, model: str):
    if kind == "run_anomaly" and dedup_key:
        return dedup_key, dedup_key.split(":", 1)[-1]
    if kind == "policy_trigger":
        return f"policy:{model}", "policy"
    if rule_id is None:
        return dedup_key or f"{kind}:{model}", kind
    if kind in ("metric_below", "metric_above"):
        subject = f"{details.get('metric', 'metric')} v{details.get('version', '?')}"
    elif kind == "feature_drift":
        subject = targets.get(int(rule_id)) or "features"
    else:
        subject = kind
    return f"rule:{int(rule_id)}:{subject}", subject


def upgrade(con, db_path) -> None:
    for name, sql_type in COLUMNS:
        con.execute(f"ALTER TABLE alerts ADD COLUMN {name} {sql_type}")
    targets = {int(r[0]): r[1] for r in con.execute("SELECT id, target FROM alert_rules").fetchall()}
    rows = con.execute("SELECT id, model, kind, rule_id, coalesce(window_start, raised_at), raised_at, dedup_key, "
                       "details, acknowledged, message FROM alerts ORDER BY id").fetchall()
    groups: dict[tuple, list] = {}
    for r in rows:
        try:
            details = json.loads(r[7]) if r[7] else {}
        except ValueError:
            details = {}
        key, subject = _key_and_subject(r[2], r[3], r[6], details if isinstance(details, dict) else {}, targets, r[1])
        groups.setdefault((r[1], key), []).append((r, subject))
    for (_model, key), members in groups.items():
        members.sort(key=lambda m: (m[0][4], m[0][0]))
        newest, subject = members[-1]
        first, last = members[0][0][4], newest[4]
        status = "acknowledged" if newest[8] else "open"
        con.execute("UPDATE alerts SET incident_key = ?, subject = ?, title = ?, status = ?, first_seen = ?, "
                    "last_seen = ?, windows = ?, updated_at = raised_at, reopened = 0 WHERE id = ?",
                    [key, subject, TITLES.get(newest[2], newest[2]), status, first, last, len(members), newest[0]])
        older = [m[0][0] for m in members[:-1]]
        if older:
            con.execute(f"UPDATE alerts SET status = 'merged', incident_key = ? WHERE id IN ({', '.join('?' * len(older))})",
                        [key, *older])
