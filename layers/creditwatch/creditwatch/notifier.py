"""Alert texts and their delivery: through SNS, a full text for email and a short one for SMS;
and as an EventBridge event (source `creditwatch`, a versioned `detail`) for systems to act on.
The event's shape is `schemas/alert-event.schema.json`."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from creditwatch.domain import RETIRED, SHARED, Alert, AlertKind, parse_iso
from creditwatch.forecast import Forecast
from creditwatch.providers import Provider

SUBJECT_LIMIT = 100
SMS_LIMIT = 140


CHANNELS = ("sns", "events")  # where every alert goes
EVENT_SOURCE = "creditwatch"
EVENT_VERSION = "1"
DETAIL_TYPES = {
    AlertKind.LOW_CREDITS: "Credit Balance Level Changed",
    AlertKind.DEPLETION_FORECAST: "Credit Depletion Forecast",
    AlertKind.CHECK_FAILED: "Credit Check Failed",
    AlertKind.RECOVERED: "Credit Alert Recovered",
    AlertKind.BURN_SPIKE: "Credit Burn Spike",
}
REMINDER = "Credit Alert Reminder"


class EventRefused(Exception):
    """EventBridge answered with a FailedEntryCount: the event was not put."""


class Message(NamedTuple):
    """An alert as it is sent; kept whole in the outbox until every channel has taken it."""

    id: str
    subject: str
    email: str
    sms: str
    attributes: dict[str, str]
    detail_type: str = ""
    detail: dict[str, Any] | None = None  # the EventBridge event's detail; None in outboxes from before events


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
    whose = "shared balance" if alert.shared_by else "account"
    subject = f"{provider.title} {whose} '{alert.account}'" + (f", pool '{alert.pool}'," if alert.pool else "")
    severity = alert.severity.upper()
    remaining = credits(alert.balance.remaining if alert.balance else None)
    prediction = alert.forecast
    lines: list[str]
    if alert.kind is AlertKind.RECOVERED and alert.reason == RETIRED:
        what = "its check" if alert.pool is None else f"its {alert.aspect} alert"
        headline = f"{where}: no longer monitored"
        gone = (
            f"No account that drew on the {provider.title} shared balance '{alert.account}' "
            f"({', '.join(alert.shared_by)}) is in creditwatch's secrets any more"
            if alert.shared_by
            else f"{provider.title} account '{alert.account}' is no longer in creditwatch's secrets"
        )
        lines = [
            f"{gone}, so it is no longer checked. {what.capitalize()} ({alert.previous}) is closed.",
            "If it was removed by mistake, or renamed, put it back: a key that returns starts afresh.",
        ]
    elif alert.kind is AlertKind.RECOVERED and alert.reason == SHARED:
        headline = f"{where}: {SHARED}"
        lines = [
            f"The {provider.title} balance of account '{alert.account}' is one its organisation's keys share: it is "
            f"now watched once, as a shared balance. Its {alert.aspect} alert here ({alert.previous}) is closed.",
        ]
    elif alert.kind is AlertKind.RECOVERED and alert.pool is None:
        headline = f"{where}: checks work again"
        lines = [f"Checking {provider.title} account '{alert.account}' works again (it was {alert.previous})."]
    elif alert.kind is AlertKind.RECOVERED and alert.aspect == "forecast":
        headline = f"{where}: no longer running out soon"
        lines = [f"{subject} is no longer forecast to run out soon (the forecast was {alert.previous})."]
    elif alert.kind is AlertKind.RECOVERED and alert.aspect == "spike":
        headline = f"{where}: burn back to its usual rate"
        lines = [f"{subject} burns at its usual rate again."]
    elif alert.kind is AlertKind.BURN_SPIKE and alert.spike is not None:
        ratio = alert.spike.ratio
        times = f"{ratio:.1f}x" if ratio is not None else "well above"
        headline = f"{severity} {where}: burn spike, {times} the usual rate"
        lines = [
            f"{subject} is burning credits fast: {credits(alert.spike.recent_per_day)} a day recently, "
            f"{times} its rate over the whole window ({credits(alert.spike.baseline_per_day)} a day).",
            f"{credits(alert.spike.consumed)} credits went in the recent part alone: look for a runaway job.",
        ]
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
        lines = [f"At the current rate {subject} runs out in about {prediction.describe()}{_before_renewal(alert)}."]
    else:
        headline = f"{severity} {where}: {remaining} credits left"
        lines = [f"{subject} is {alert.level} (it was {alert.previous})."]
    if alert.shared_by and alert.reason != RETIRED:
        lines.append(f"The accounts whose keys draw on this balance: {', '.join(alert.shared_by)}.")
    if alert.reminder:
        headline = f"Reminder: {headline}"
        lines.insert(0, f"Reminder: this is still {alert.level}.")
    if alert.catch_up:
        headline = f"After a silence: {headline}"
        lines.insert(0, f"A silence kept this quiet; it has ended and this is still {alert.level}.")
    if alert.folded_forecast is not None and prediction is not None:
        lines.append(
            f"At the current rate it runs out in about {prediction.describe()}{_before_renewal(alert)}"
            f" (forecast: {alert.folded_forecast})."
        )
    if alert.topup is not None and alert.kind is AlertKind.RECOVERED:
        seen = "Renewal" if alert.topup.renewal else "Top-up"
        lines.append(f"{seen} detected: {'+' + credits(alert.topup.added) if alert.topup.added else 'yes'} credits.")
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
        detail_type=REMINDER if alert.reminder else DETAIL_TYPES[alert.kind],
        detail=event_detail(alert, provider),
    )


def _number(value: Decimal | None) -> str | None:
    """Exact, as a decimal string: a float would round a balance."""
    return None if value is None else str(value)


def event_detail(alert: Alert, provider: Provider) -> dict[str, Any]:
    """The event's `detail`: what a consumer needs to act, never a key."""
    balance, prediction = alert.balance, alert.forecast
    return {
        "version": EVENT_VERSION,
        "alert_id": alert.id,
        "dedup_key": f"creditwatch/{provider.name}/{alert.account}/{alert.pool or 'check'}/{alert.aspect}",
        "alert": str(alert.kind),
        "severity": alert.severity,
        "reminder": alert.reminder,
        "catch_up": alert.catch_up,
        "provider": provider.name,
        "account": alert.account,
        "pool": alert.pool,
        "aspect": alert.aspect,
        "level": str(alert.level),
        "previous_level": str(alert.previous),
        "remaining": _number(balance.remaining if balance else None),
        "limit": _number(balance.limit if balance else None),
        "threshold": _number(alert.line),
        "burn_per_day": _number(prediction.burn_per_day if prediction else None),
        "days_left": _number(prediction.days_left if prediction else None),
        "reason": alert.reason,
        "forecast_level": None if alert.folded_forecast is None else str(alert.folded_forecast),
        # formatting rounds on its own, so no ratio can make rendering raise
        "spike_ratio": f"{alert.spike.ratio:.2f}" if alert.spike and alert.spike.ratio else None,
        "renews_at": balance.renews_at if balance else None,
        "renewal": alert.topup.renewal if alert.topup else None,
        "shared_by": list(alert.shared_by),
        "observed_at": alert.observed_at,
        "top_up": provider.top_up,
    }


def _before_renewal(alert: Alert) -> str:
    """ ", 6 days before its renewal on 15 Dec", where the provider announced one."""
    balance, prediction = alert.balance, alert.forecast
    if balance is None or balance.renews_at is None or prediction is None or prediction.empty_at is None:
        return ""
    renews = parse_iso(balance.renews_at)
    days = (renews - prediction.empty_at) / timedelta(days=1)
    return f", {days:.0f} days before its renewal on {renews.day} {renews:%b}" if days >= 0.5 else ""


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
    def __init__(self, sns: Any, topic_arn: str, provider: Provider, events: Any = None, bus: str = "default") -> None:
        self.sns = sns
        self.topic_arn = topic_arn
        self.provider = provider
        self.events = events
        self.bus = bus

    def render(self, alert: Alert) -> Message:
        return render(alert, self.provider)

    def send(self, message: Message, channel: str) -> None:
        """Deliver to one channel; raises if the channel did not take it."""
        if channel == "events":
            self.put_event(message)
        else:
            self.publish(message)

    def put_event(self, message: Message) -> None:
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": message.detail_type,
            "Detail": json.dumps(message.detail),
            "EventBusName": self.bus,
        }
        response = self.events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            code = (response.get("Entries") or [{}])[0].get("ErrorCode", "unknown")
            raise EventRefused(f"EventBridge refused the event ({str(code)[:60]})")

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
