"""The demo dataset, the first thing every user trains: reproducible, and worth a model."""

from __future__ import annotations

import lightgbm
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlmanager.datasets.demo.generate import CSV_PATH, generate_csv
from mlmanager.datasets.tests.conftest import DEMO_CSV

CATEGORIES = ["plan", "region"]
NUMBERS = ["monthly_fee", "tenure_months", "support_calls", "satisfaction"]


def test_committed_demo_is_what_the_generator_writes() -> None:
    assert CSV_PATH == DEMO_CSV
    # A numpy upgrade may change the random stream: then the demo changed too, and the figures
    # describing it (README, the test below) need a look after `python .../generate.py`.
    assert DEMO_CSV.read_text(encoding="utf-8") == generate_csv(), "demo differs from generate.py"


def test_demo_churn_is_predictable_well_above_the_majority_baseline() -> None:
    """A cheap stand-in for "the demo's level-1 model reaches a holdout ROC AUC of 0.80" (level-1
    runs through the platform measured 0.907-0.918): such a run took 45-70 s on a busy 2-core
    machine, even capped at 4 candidates, and can end at its one-minute budget there without a
    model, so this cross-validates the kind of models the search starts from (a linear model,
    LightGBM at its defaults on one thread) on the suggested inputs but the signup date."""
    frame = pd.read_csv(DEMO_CSV)
    churned = frame["churned"].eq("yes")
    majority_accuracy = max(churned.mean(), 1 - churned.mean())
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    linear = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), CATEGORIES),
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
        ),
        LogisticRegression(),
    )
    trees = lightgbm.LGBMClassifier(n_jobs=1, verbose=-1)
    tree_inputs = frame[CATEGORIES + NUMBERS].astype({name: "category" for name in CATEGORIES})
    for model, inputs in ((linear, frame[CATEGORIES + NUMBERS]), (trees, tree_inputs)):
        scores = cross_validate(model, inputs, churned, cv=folds, scoring=["roc_auc", "accuracy"])
        assert scores["test_roc_auc"].mean() >= 0.85, model
        assert scores["test_roc_auc"].min() >= 0.80, model
        assert scores["test_accuracy"].mean() >= majority_accuracy + 0.05, model
