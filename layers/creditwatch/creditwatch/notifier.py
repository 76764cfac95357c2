"""Alert texts and their delivery through SNS: a full text for email, a short one for SMS."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, NamedTuple

from creditwatch.domain import Alert, AlertKind
from creditwatch.forecast import Forecast
from creditwatch.providers import Provider

SUBJECT_LIMIT = 100
SMS_LIMIT = 140


class Message(NamedTuple):
    """An alert as it is sent; kept whole in the outbox until SNS has taken it."""

    id: str
    subject: str
    email: str
    sms: str
    attributes: dict[str, str]


def credits(value: Decimal | None) -> str:
    """1,234 or 1,234.5 (at most two decimals). Formatting rounds on its own, so no size of
    storable number can make it raise."""
    if value is None:
        return "unknown"
    text = f"{value:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value: Decimal) -> str:
    return f"{value:.1f}%"


def _clip(text: str, limit: int) -> str:
    """Printable ASCII of at most `limit` characters, as SNS requires of a subject.

    Text from a provider (a Content-Type, say) could hold anything; SNS would refuse the alert.
    """
    text = "".join(char if " " <= char <= "~" else "?" for char in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(alert: Alert, provider: Provider) -> Message:
    where = f"{provider.title}/{alert.account}" + (f"/{alert.pool}" if alert.pool else "")
    subject = f"{provider.title} account '{alert.account}'" + (f", pool '{alert.pool}'," if alert.pool else "")
    severity = alert.severity.upper()
    remaining = credits(alert.balance.remaining if alert.balance else None)
    prediction = alert.forecast
    lines: list[str]
    if alert.kind is AlertKind.RECOVERED and alert.pool is None:
        headline = f"{where}: checks work again"
        lines = [f"Checking {provider.title} account '{alert.account}' works again (it was {alert.previous})."]
    elif alert.kind is AlertKind.RECOVERED and alert.aspect == "forecast":
        headline = f"{where}: no longer running out soon"
        lines = [f"{subject} is no longer forecast to run out soon (the forecast was {alert.previous})."]
    elif alert.kind is AlertKind.RECOVERED:
        headline = f"{where} recovered: {remaining} credits"
        lines = [f"{subject} is back to ok (it was {alert.previous})."]
    elif alert.kind is AlertKind.CHECK_FAILED:
        headline = f"{severity} {where}: check failed: {alert.reason}"
        lines = [
            f"creditwatch cannot read the {provider.title} balance of account '{alert.account}': {alert.reason}.",
            "Enrichment calls that use this key are likely failing too.",
            "If the key was revoked or rotated, put the new key into this provider's secret.",
        ]
    elif alert.kind is AlertKind.DEPLETION_FORECAST and prediction is not None:
        headline = f"{severity} {where}: empty in {prediction.describe()}"
        lines = [f"At the current rate {subject} runs out in about {prediction.describe()}."]
    else:
        headline = f"{severity} {where}: {remaining} credits left"
        lines = [f"{subject} is {alert.level} (it was {alert.previous})."]
    if alert.reminder:
        headline = f"Reminder: {headline}"
        lines.insert(0, f"Reminder: this is still {alert.level}.")
    if alert.topup is not None and alert.kind is AlertKind.RECOVERED:
        lines.append(f"Top-up detected: {'+' + credits(alert.topup.added) if alert.topup.added else 'yes'} credits.")
    lines += _balance_lines(alert) + _forecast_lines(prediction)
    lines += [
        f"Observed at: {alert.observed_at}",
        "",
        f"Top up or manage the key: {provider.top_up}",
        f"alert={alert.kind} severity={alert.severity} id={alert.id}. creditwatch alerts once per change of level.",
    ]
    return Message(
        id=alert.id,
        subject=_clip(f"[creditwatch] {headline}", SUBJECT_LIMIT),
        email="\n".join(lines),
        sms=_clip(f"creditwatch: {headline}", SMS_LIMIT),
        attributes={
            "provider": provider.name,
            "account": alert.account,
            "severity": alert.severity,
            "alert": str(alert.kind),
            "alert_id": alert.id,
        },
    )


def _balance_lines(alert: Alert) -> list[str]:
    balance = alert.balance
    if balance is None:
        return []
    lines = ["", f"Remaining:   {credits(balance.remaining)} credits"]
    if alert.line is not None:
        lines.append(f"Threshold:   {credits(alert.line)} credits ({alert.level})")
    if balance.limit is not None:
        lines.append(f"Plan limit:  {credits(balance.limit)}")
    if balance.used is not None:
        lines.append(f"Used:        {credits(balance.used)}")
    if balance.percent_remaining is not None:
        lines.append(f"Percent left: {percent(balance.percent_remaining)}")
    return lines


def _forecast_lines(prediction: Forecast | None) -> list[str]:
    if prediction is None or prediction.burn_per_day is None:
        return []
    lines = [f"Burn rate:   {credits(prediction.burn_per_day)} credits/day"]
    if prediction.days_left is not None:
        empty = f", around {prediction.empty_at:%Y-%m-%d %H:%M} UTC" if prediction.empty_at else ""
        lines.append(f"Empty in:    {prediction.describe()}{empty}")
    lines.append(
        f"Based on:    {prediction.observations} balances over {prediction.hours:.1f} hours (top-ups excluded)"
    )
    return lines


class Notifier:
    def __init__(self, sns: Any, topic_arn: str, provider: Provider) -> None:
        self.sns = sns
        self.topic_arn = topic_arn
        self.provider = provider

    def render(self, alert: Alert) -> Message:
        return render(alert, self.provider)

    def publish(self, message: Message) -> None:
        self.sns.publish(
            TopicArn=self.topic_arn,
            Subject=message.subject,
            Message=json.dumps({"default": message.email, "email": message.email, "sms": message.sms}),
            MessageStructure="json",
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
            },
        )
