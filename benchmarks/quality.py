"""Quality benchmark: rating accuracy on ml-100k's official folds and top-N ranking quality.

Ratings: mean RMSE/MAE over ml-100k's u1..u5 folds for the rating models, beside
scikit-surprise's SVD, SVD++, KNNBaseline and BaselineOnly with default parameters on the same
folds in the same run (when ``scikit-surprise`` is installed; the published figures are printed
otherwise).

Top-N: the per-user temporal holdout (each user's latest 20% of ratings, users with at least 5;
relevant = held-out ratings >= 4.0; training items excluded; full ranking), on ml-latest-small
and ml-100k, for every model with its default parameters. Defaults were chosen on a validation
split carved from the training part, never on the test part: the ``validation`` column shows
the score on that inner split (the latest 20% of each user's *training* ratings), so a reader
can see the test figure was not what was tuned.

Diversity: EASE's top 50 on the same holdout re-ranked by MMR (:mod:`movierec.models.rerank`,
what the API's ``diversity`` does) at diversity 0 to 1: NDCG@10 against intra-list diversity@10
(genres, cosine) and catalogue coverage@10, on both data sets.

Usage: python benchmarks/quality.py [--datasets-dir DIR] [--models a,b] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from movierec.config import Settings
from movierec.data.split import Split, user_temporal_holdout
from movierec.evaluation import metrics
from movierec.evaluation.protocol import EvaluationConfig, Report, evaluate, relevant_items
from movierec.models import MODELS, create_model
from movierec.models.rerank import mmr
from movierec.training.experiments import Experiment, evaluate_model, prepare

RATING_MODELS = ("normal", "baseline", "svd", "svdpp", "knn_baseline", "rating_blend")
SURPRISE_PUBLISHED = {"SVD": 0.938, "SVDpp": 0.922, "KNNBaseline": 0.932, "BaselineOnly": 0.946}
TARGETS = {"rmse_best": 0.905, "rmse_fast_mf": 0.925}
NDCG_TARGETS = {"ml-latest-small": 0.112, "ml-100k": 0.178}


def _settings(datasets_dir: Path, work: Path) -> Settings:
    return Settings(datasets_dir=datasets_dir, data_dir=work)


def rating_benchmark(settings: Settings) -> dict[str, Any]:
    """Mean RMSE over u1..u5 for our rating models and, when installed, Surprise's."""
    experiment = prepare(settings, "ml-100k", "ml100k_official")
    ours = {}
    for name in RATING_MODELS:
        report = evaluate_model(experiment, name, config=EvaluationConfig(ks=(10,)))
        ours[name] = {
            "rmse": report.metrics["rmse"],
            "mae": report.metrics["mae"],
            "fit_seconds": report.fit_seconds,
        }
    return {"movierec": ours, "surprise": _surprise_on_folds(experiment)}


def _surprise_on_folds(experiment: Experiment) -> dict[str, Any]:
    try:
        import surprise
    except ImportError:
        return {"installed": False, "published": SURPRISE_PUBLISHED}
    algorithms = {
        "SVD": surprise.SVD,
        "SVDpp": surprise.SVDpp,
        "KNNBaseline": surprise.KNNBaseline,
        "BaselineOnly": surprise.BaselineOnly,
    }
    results: dict[str, Any] = {"installed": True}
    for name, algorithm in algorithms.items():
        rmses, seconds = [], []
        for split in experiment.splits:
            train_frame, test_frame = split.train.to_frame(), split.test.to_frame()
            reader = surprise.Reader(rating_scale=split.train.rating_scale)
            columns = ["user_id", "item_id", "rating"]
            trainset = surprise.Dataset.load_from_df(
                train_frame[columns], reader
            ).build_full_trainset()
            model = algorithm(verbose=False) if name == "KNNBaseline" else algorithm()
            started = time.perf_counter()
            model.fit(trainset)
            seconds.append(time.perf_counter() - started)
            predictions = model.test(list(test_frame[columns].itertuples(index=False)))
            rmses.append(surprise.accuracy.rmse(predictions, verbose=False))
        results[name] = {"rmse": float(np.mean(rmses)), "fit_seconds": float(np.mean(seconds))}
    return results


def _validation_split(split: Split) -> Split:
    """The latest 20% of each user's training ratings: where defaults were chosen."""
    return user_temporal_holdout(split.train, test_fraction=0.2, min_ratings=5)


def topn_benchmark(settings: Settings, dataset: str, models: list[str]) -> list[dict[str, Any]]:
    """Every model on the temporal holdout of ``dataset``: validation and test figures."""
    experiment = prepare(settings, dataset, "user_temporal")
    [split] = experiment.splits
    validation = _validation_split(split)
    config = EvaluationConfig(ks=(10,))
    rows = []
    for name in models:
        inner = evaluate(create_model(name), validation, config)
        outer: Report = evaluate(create_model(name), split, config)
        rows.append(
            {
                "model": name,
                "validation_ndcg@10": inner.metrics.get("ndcg@10", float("nan")),
                **{key: outer.metrics.get(key, float("nan")) for key in _TOPN_COLUMNS},
                "fit_seconds": outer.fit_seconds,
                "eval_seconds": outer.eval_seconds,
            }
        )
    return sorted(rows, key=lambda row: row["ndcg@10"], reverse=True)


_TOPN_COLUMNS = (
    "ndcg@10",
    "precision@10",
    "recall@10",
    "map@10",
    "mrr@10",
    "coverage@10",
    "novelty@10",
    "diversity@10",
)


def _print_ratings(result: dict[str, Any]) -> None:
    print("\n## Ratings: ml-100k official folds u1..u5, mean")
    print("| model | RMSE | MAE | fit s/fold |")
    print("|---|---|---|---|")
    for name, figures in result["movierec"].items():
        row = f"| movierec {name} | {figures['rmse']:.4f} | {figures['mae']:.4f} |"
        print(f"{row} {figures['fit_seconds']:.2f} |")
    surprise = result["surprise"]
    if surprise.get("installed"):
        for name, figures in surprise.items():
            if name != "installed":
                seconds = figures["fit_seconds"]
                print(f"| surprise {name} | {figures['rmse']:.4f} | - | {seconds:.2f} |")
    else:
        for name, rmse in SURPRISE_PUBLISHED.items():
            print(f"| surprise {name} (published, not run) | {rmse:.3f} | - | - |")
    best = min(figures["rmse"] for figures in result["movierec"].values())
    mf = result["movierec"]["svd"]["rmse"]
    print(f"\nbest RMSE {best:.4f} (target <= {TARGETS['rmse_best']}): ", end="")
    print("PASS" if best <= TARGETS["rmse_best"] else "FAIL")
    print(f"svd RMSE {mf:.4f} (target <= {TARGETS['rmse_fast_mf']}): ", end="")
    print("PASS" if mf <= TARGETS["rmse_fast_mf"] else "FAIL")


def _print_topn(dataset: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n## Top-N: {dataset}, per-user temporal holdout (20%), relevant >= 4")
    header = ["model", "validation_ndcg@10", *_TOPN_COLUMNS, "fit_seconds"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [row["model"]] + [f"{row[c]:.4f}" for c in header[1:-1]]
        print("| " + " | ".join(cells) + f" | {row['fit_seconds']:.2f} |")
    best = rows[0]
    popularity = next((r["ndcg@10"] for r in rows if r["model"] == "popularity"), None)
    target = NDCG_TARGETS.get(dataset)
    if target is not None:
        verdict = "PASS" if best["ndcg@10"] >= target else "FAIL"
        print(
            f"\nbest NDCG@10 {best['ndcg@10']:.4f} ({best['model']}; target >= {target}): {verdict}"
        )
    if popularity is not None:
        # Rating models are fitted for RMSE: ranking the whole catalogue by predicted rating
        # favours movies few people rated (Cremonesi et al. 2010), so they are judged by RMSE.
        rating_models = {"popularity", *RATING_MODELS}
        top_n = [r for r in rows if r["model"] not in rating_models]
        beaten = all(r["ndcg@10"] > popularity for r in top_n)
        print(f"every top-N model beats popularity ({popularity:.4f}): {beaten}")


DIVERSITY_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DIVERSITY_DEPTH = 50  # candidates MMR re-ranks (the API's: see movierec.serving.controls)


def diversity_curve(settings: Settings, dataset: str, model_name: str) -> list[dict[str, Any]]:
    """NDCG@10, intra-list diversity@10 (genres, cosine) and coverage@10 of ``model_name``'s
    top 50 re-ranked by MMR at each diversity level, on the per-user temporal holdout."""
    [split] = prepare(settings, dataset, "user_temporal").splits
    model = create_model(model_name).fit(split.train)
    users, relevant = relevant_items(split.test, EvaluationConfig())
    candidates, scores = model.recommend(users, k=DIVERSITY_DEPTH)
    genres = split.train.genre_matrix()[0].toarray()
    rows = []
    for level in DIVERSITY_LEVELS:
        started = time.perf_counter()
        top = np.stack(
            [
                row[mmr(row_scores, genres[row], 10, level)]
                for row, row_scores in zip(candidates, scores, strict=True)
            ]
        )
        rows.append(
            {
                "diversity": level,
                "ndcg@10": metrics.ndcg_at_k(top, relevant, 10),
                "diversity@10": metrics.intra_list_diversity(top, genres),
                "coverage@10": metrics.catalog_coverage(top, split.train.n_items),
                "ms_per_list": 1000 * (time.perf_counter() - started) / len(users),
            }
        )
    return rows


def _print_curve(dataset: str, model_name: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n## MMR diversity curve, {model_name} on {dataset} (top {DIVERSITY_DEPTH} re-ranked)")
    print("| diversity | NDCG@10 | intra-list diversity@10 | coverage@10 | ms per list |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['diversity']:.1f} | {row['ndcg@10']:.4f} | {row['diversity@10']:.4f} | "
            f"{row['coverage@10']:.4f} | {row['ms_per_list']:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path(os.environ.get("MOVIEREC_DATASETS_DIR", "../shared/datasets")),
    )
    parser.add_argument("--models", default=",".join(sorted(MODELS)))
    parser.add_argument("--skip-ratings", action="store_true")
    parser.add_argument("--skip-topn", action="store_true")
    parser.add_argument("--skip-diversity", action="store_true")
    parser.add_argument("--diversity-model", default="ease")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    models = [name for name in args.models.split(",") if name]
    print(f"# movierec quality benchmark, load average {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        settings = _settings(args.datasets_dir.resolve(), Path(work))
        if not args.skip_ratings:
            results["ratings"] = rating_benchmark(settings)
            _print_ratings(results["ratings"])
        for dataset in () if args.skip_topn else ("ml-latest-small", "ml-100k"):
            results[dataset] = topn_benchmark(settings, dataset, models)
            _print_topn(dataset, results[dataset])
        for dataset in () if args.skip_diversity else ("ml-latest-small", "ml-100k"):
            curve = diversity_curve(settings, dataset, args.diversity_model)
            results[f"diversity/{dataset}"] = curve
            _print_curve(dataset, args.diversity_model, curve)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
