"""Writes customer_churn.csv, the demo dataset every new user trains first.

    python mlmanager/datasets/demo/generate.py

1 000 customers of a subscription service on 31 December 2025, and whether they left in the
quarter after (`churned`, yes/no, about one in four). Every value comes from numpy with the fixed
seed below, so the file is the same on every run and a test checks the committed one against it.

How the signal is built: the churn log-odds add up the effects below, and each customer's outcome
is drawn from the resulting probability, so the label is noisy: a cross-validated logistic
regression or default LightGBM scores a ROC AUC of about 0.9, never 1, and the majority class
(no churn) is about 73 %.

- `tenure_months` follows from `signup_date`; new customers leave far more often than loyal ones
  (a risk that falls off over the first year or two).
- `plan`: basic customers leave more, premium ones less; `monthly_fee` is set by the plan plus
  add-ons, and paying more than the plan's usual fee adds risk (the customer shops around).
- `support_calls` in the last quarter add risk, sharply from four calls on; they also lower
  `satisfaction` (a 1–5 survey answer), which lowers risk the higher it is.
- `region`: customers in the south, where a competitor launched, leave a little more.

Missing values, so the profile has something to show: about 7 % of the survey answers
(`satisfaction`) and about 1.5 % of `monthly_fee` (bills not yet issued) are empty.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

SEED = 20251231
ROWS = 1000
FIRST_ID = 100000  # ids "C100000" … "C100999"
SNAPSHOT = np.datetime64("2025-12-31")
DAYS_PER_MONTH = 30.44
PLANS = np.array(["basic", "standard", "premium"])
PLAN_SHARES = [0.45, 0.35, 0.20]
PLAN_FEE = np.array([24.0, 45.0, 79.0])  # the usual monthly fee of each plan
PLAN_RISK = np.array([0.6, 0.0, -0.9])  # added to the churn log-odds
REGIONS = np.array(["north", "east", "south", "west"])
SOUTH_RISK = 0.35
SATISFACTION_MISSING_SHARE = 0.07
FEE_MISSING_SHARE = 0.015
CSV_PATH = Path(__file__).resolve().with_name("customer_churn.csv")
COLUMNS = [
    "customer_id",
    "signup_date",
    "plan",
    "region",
    "monthly_fee",
    "tenure_months",
    "support_calls",
    "satisfaction",
    "churned",
]


def generate_rows(seed: int = SEED, rows: int = ROWS) -> list[list[str]]:
    """The dataset as CSV cells (header excluded), empty strings for missing values."""
    rng = np.random.default_rng(seed)

    # Many recent sign-ups and a long tail of loyal customers, up to six years back.
    days_back = np.minimum(rng.exponential(26 * DAYS_PER_MONTH, rows), 72 * DAYS_PER_MONTH - 1)
    days_back = days_back.astype(np.int64) + 1
    signup = SNAPSHOT - days_back.astype("timedelta64[D]")
    tenure = np.ceil(days_back / DAYS_PER_MONTH).astype(np.int64)  # months begun

    plan = rng.choice(len(PLANS), rows, p=PLAN_SHARES)
    region = rng.integers(0, len(REGIONS), rows)
    addons = rng.gamma(1.5, 4.0, rows)  # extras on top of the plan's fee
    fee = PLAN_FEE[plan] * rng.normal(1.0, 0.06, rows) + addons
    overcharge = (fee - (PLAN_FEE[plan] + 6.0)) / 10.0  # in tens of the currency

    calls = rng.poisson(0.8 + 0.5 * (plan == 0) + 0.8 * (tenure < 6), rows)
    # The survey answer before rounding: the signal satisfaction carries even where it is empty.
    mood = 3.6 - 0.45 * calls + 0.3 * (plan == 2) + rng.normal(0.0, 0.6, rows)
    satisfaction = np.clip(np.rint(mood), 1, 5).astype(np.int64)

    log_odds = (
        -4.0
        + 5.0 * np.exp(-tenure / 10.0)
        + PLAN_RISK[plan]
        + 1.0 * overcharge
        + 0.8 * calls
        + 1.2 * (calls >= 4)
        - 1.3 * (mood - 3.0)
        + SOUTH_RISK * (REGIONS[region] == "south")
    )
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-log_odds))

    satisfaction_missing = rng.random(rows) < SATISFACTION_MISSING_SHARE
    fee_missing = rng.random(rows) < FEE_MISSING_SHARE
    return [
        [
            f"C{FIRST_ID + index}",
            str(signup[index]),
            str(PLANS[plan[index]]),
            str(REGIONS[region[index]]),
            "" if fee_missing[index] else f"{fee[index]:.2f}",
            str(tenure[index]),
            str(calls[index]),
            "" if satisfaction_missing[index] else str(satisfaction[index]),
            "yes" if churned[index] else "no",
        ]
        for index in range(rows)
    ]


def generate_csv(seed: int = SEED, rows: int = ROWS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(generate_rows(seed, rows))
    return buffer.getvalue()


if __name__ == "__main__":
    CSV_PATH.write_text(generate_csv(), encoding="utf-8")
    print(f"wrote {CSV_PATH}")
