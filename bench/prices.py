"""AWS list prices the bill is worked out with: us-east-1, on-demand, without free tiers.

Each price names the page it comes from. Checked on 2026-12-01; update them here, in one
place, when AWS changes them.
"""

from __future__ import annotations

from decimal import Decimal

D = Decimal

# CloudWatch: https://aws.amazon.com/cloudwatch/pricing/
# A custom metric is each distinct namespace, name and set of dimension values, prorated by
# the hours in which it is published; tiers per month: 10,000 at $0.30, the next 240,000 at
# $0.10, the next 750,000 at $0.05, beyond that $0.02.
METRIC_TIERS = ((10_000, D("0.30")), (240_000, D("0.10")), (750_000, D("0.05")), (None, D("0.02")))
ALARM_MONTH = D("0.10")  # a standard-resolution alarm
DASHBOARD_MONTH = D("3.00")  # beyond the first three of an account
LOGS_INGESTED_GB = D("0.50")  # Standard log class
LOGS_STORED_GB_MONTH = D("0.03")
LOGS_INSIGHTS_SCANNED_GB = D("0.005")

# DynamoDB on-demand: https://aws.amazon.com/dynamodb/pricing/on-demand/
# A write request unit writes up to 1 KB; a read request unit reads up to 4 KB strongly
# consistently. Storage counts 100 bytes of overhead an item, indexes included.
DYNAMODB_WRITE_UNITS_MILLION = D("0.625")
DYNAMODB_READ_UNITS_MILLION = D("0.125")
DYNAMODB_STORED_GB_MONTH = D("0.25")
DYNAMODB_PITR_GB_MONTH = D("0.20")

# Lambda, arm64: https://aws.amazon.com/lambda/pricing/
LAMBDA_GB_SECOND = D("0.0000133334")
LAMBDA_REQUESTS_MILLION = D("0.20")

# Secrets Manager: https://aws.amazon.com/secrets-manager/pricing/
SECRET_MONTH = D("0.40")
SECRETS_CALLS_10K = D("0.05")

# KMS: https://aws.amazon.com/kms/pricing/ (the SNS topic's customer-managed key)
KMS_KEY_MONTH = D("1.00")

# SQS standard queues: https://aws.amazon.com/sqs/pricing/ (64 KB chunks; a shard is one)
SQS_REQUESTS_MILLION = D("0.40")

# EventBridge Scheduler: https://aws.amazon.com/eventbridge/pricing/
SCHEDULER_INVOCATIONS_MILLION = D("1.00")

# X-Ray (the functions trace every invocation): https://aws.amazon.com/xray/pricing/
XRAY_TRACES_MILLION = D("5.00")

HOURS_PER_MONTH = 730
GB = 1024**3
