"""The paper's tables, rebuilt from this run's metrics with the published numbers beside them.

Measured columns come only from ``metrics/{method}/{subset}.json`` written by this run; paper
columns are quoted from the CSVs under ``workflow/resources/paper/`` and always labelled "paper".
Rows the project does not run are kept, marked ``quoted``, with empty measured columns, so a
reader never mistakes a quoted number for one of ours.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipcluster.atomic import write_text

PAPER_DIR = Path(__file__).resolve().parents[2] / "workflow" / "resources" / "paper"

# MS1M sizes of the standard subsets, for the paper columns' headers.
MS1M_SIZES = {"part1": "584K", "part1-3": "1.74M", "part1-5": "2.89M", "part1-7": "4.05M", "part1-9": "5.21M"}

MEASURED = "measured"
QUOTED = "quoted"


@dataclass(frozen=True)
class MethodInfo:
    """How a method of this workflow is named in the tables and which published row it corresponds to."""

    display: str
    paper_row: str | None  # row name in the paper's CSVs, None if the paper has none
    paper_note: str = ""  # where the paper number comes from when it is not the table's own
    peer_row: str | None = None  # row in peers_ms1m.csv: a peer's own paper, quoted at every scale


METHODS: dict[str, MethodInfo] = {
    "kmeans": MethodInfo("K-Means", "K-Means"),
    "dbscan": MethodInfo("DBSCAN", "DBSCAN"),
    "hac": MethodInfo("HAC", "HAC"),
    "aro": MethodInfo("ARO", "ARO"),
    "cdp": MethodInfo("CDP", "CDP"),
    "infomap": MethodInfo("Infomap alone", "Only Infomap", "CLIP-Cluster Table 2"),
    "infomap_tuned": MethodInfo("Infomap alone", None),
    "facet": MethodInfo("FaceT", None, peer_row="FaceT"),
    "mhc": MethodInfo("MHC", "MHC", peer_row="MHC (NDDe+TPDi)"),
    "pair_baseline": MethodInfo("Pair baseline + Infomap", None),
    "clipcluster": MethodInfo("CLIP-Cluster (ours)", "CLIP-Cluster (Ours)"),
    "clipcluster_nohall": MethodInfo("CLIP-Cluster, no hallucination", None),
    "clipcluster_avg": MethodInfo("CLIP-Cluster, average fusion", None),
    "clipcluster_self": MethodInfo("CLIP-Cluster, self-attention fusion", None),
    "clipcluster_naive": MethodInfo("CLIP-Cluster + naive pruning", None),
}

# Rows of the paper's ablation tables and the method of this workflow that measures each.
TABLE1_ROWS = {"Average": "clipcluster_avg", "Self-Attention": "clipcluster_self", "Cross-Attention": "clipcluster"}
TABLE2_ROWS = {"Ours + Naive Pruning": "clipcluster_naive", "Only Infomap": "infomap", "Ours + Infomap": "clipcluster"}
# rows of ours that the paper's table does not have, each after the paper row it belongs with
TABLE2_EXTRA = {"Only Infomap": "infomap_tuned"}
ABLATION_COLUMNS = [
    "method",
    "source",
    "precision",
    "recall",
    "f_pairwise",
    "f_bcubed",
    "nmi",
    "time_s",
    "note",
    "paper_precision",
    "paper_recall",
    "paper_f_pairwise",
]


def ablation_table(
    csv_name: str,
    rows: Mapping[str, str],
    measured: Mapping[str, Mapping[str, Any] | None],
    paper_dir: Path = PAPER_DIR,
    extra: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Tables 1 and 2: one row per paper row, our measurement of it (when run) beside the quoted values.

    ``extra`` maps a paper row to a measured method of ours without a paper row, shown right after it (Table 2's
    Infomap alone with its floor chosen on the training part), when measured.
    """
    paper = read_paper(csv_name, paper_dir)
    out = []
    for name in paper.index:
        method = rows.get(name)
        m = measured.get(method) if method else None
        row: dict[str, Any] = {
            "method": name + _threshold_label(method, m),
            "source": MEASURED if method in measured else QUOTED,
            "paper_precision": paper.loc[name, "precision"],
            "paper_recall": paper.loc[name, "recall"],
            "paper_f_pairwise": paper.loc[name, "f_pairwise"],
        }
        if method in measured:
            row |= _measured_cells(m) | {"note": _note(m)}
        out.append(row)
        more = (extra or {}).get(name)
        if more in measured:
            m = measured[more]
            out.append({"method": name + _threshold_label(more, m), "source": MEASURED, **_measured_cells(m),
                        "note": _note(m)})  # fmt: skip
    return _order_columns(pd.DataFrame(out), ABLATION_COLUMNS)


def _threshold_label(method: str | None, m: Mapping[str, Any] | None) -> str:
    """What tells Infomap alone's two rows apart in a table: its floor, fixed or chosen on the training part."""
    if method not in ("infomap", "infomap_tuned") or not m or not m.get("params"):
        return ""
    floor = m["params"].get("sim_floor")
    how = "chosen on the training part" if method == "infomap_tuned" else "fixed"
    return f" (floor {floor:g}, {how})" if isinstance(floor, int | float) else ""


def display_name(method: str, m: Mapping[str, Any] | None = None) -> str:
    """A method's table name; Infomap alone's rows say which floor they ran at."""
    return method_info(method).display + _threshold_label(method, m)


def method_info(method: str) -> MethodInfo:
    """The table name of ``method``; unknown methods are shown under their config key."""
    return METHODS.get(method, MethodInfo(method, None))


def read_paper(name: str, paper_dir: Path = PAPER_DIR) -> pd.DataFrame:
    """One of the paper CSVs, indexed by method name."""
    return pd.read_csv(paper_dir / name, comment="#").set_index("method")


def _pct(value: Any) -> float:
    """Metrics are stored as fractions; tables print percentages like the papers."""
    return float("nan") if value is None else 100.0 * float(value)


def _measured_cells(m: Mapping[str, Any] | None) -> dict[str, Any]:
    if m is None or m.get("skipped"):
        return {}
    return {
        "precision": _pct(m["pairwise_precision"]),
        "recall": _pct(m["pairwise_recall"]),
        "f_pairwise": _pct(m["pairwise_f"]),
        "f_bcubed": _pct(m["bcubed_f"]),
        "nmi": _pct(m["nmi"]),
        "time_s": float(m["seconds"]),
    }


def _note(m: Mapping[str, Any] | None) -> str:
    if m is None:
        return "not run"
    if m.get("skipped"):
        return f"skipped: {m['skipped']}"
    return ""


def table3(measured: Mapping[str, Mapping[str, Any]], paper_dir: Path = PAPER_DIR) -> pd.DataFrame:
    """Table 3: methods on part1 (precision, recall, F_P, time) with the paper's values beside ours.

    ``measured`` maps a method key to its metrics dict on the Table 3 subset.
    Row order follows the paper; measured methods without a Table 3 row go just before the paper's own method.
    """
    paper = read_paper("table3_part1.csv", paper_dir)
    paper_t2 = read_paper("table2_refinement.csv", paper_dir)
    peers = read_paper("peers_ms1m.csv", paper_dir)
    rows: list[dict[str, Any]] = []
    claimed: set[str] = set()
    by_paper_row = {method_info(m).paper_row: m for m in measured}

    def paper_cells(row_name: str | None, peer_row: str | None = None) -> dict[str, Any]:
        for table, source in ((paper, "CLIP-Cluster Table 3"), (paper_t2, "CLIP-Cluster Table 2")):
            if row_name is not None and row_name in table.index:
                r = table.loc[row_name]
                return {
                    "paper_precision": r.get("precision", np.nan),
                    "paper_recall": r.get("recall", np.nan),
                    "paper_f_pairwise": r.get("f_pairwise", np.nan),
                    "paper_time": r.get("time", "") if isinstance(r.get("time", ""), str) else "",
                    "paper_source": source,
                }
        if peer_row is not None and peer_row in peers.index:  # a peer's own paper (no precision, recall, time)
            r = peers.loc[peer_row]
            return {"paper_f_pairwise": float(r["fp_584K"]), "paper_source": r["source"]}
        return {"paper_source": ""}

    extras = [m for m in measured if method_info(m).paper_row not in paper.index]
    for name in paper.index:
        if name == paper.index[-1]:  # the paper's own method closes the table; our extra rows go before it
            for m in extras:
                info = method_info(m)
                rows.append(_row3(m, measured[m], paper_cells(info.paper_row, info.peer_row)))
                claimed.add(m)
        if name in by_paper_row:
            m = by_paper_row[name]
            rows.append(_row3(m, measured[m], paper_cells(name)))
            claimed.add(m)
        else:
            rows.append({"method": name, "source": QUOTED, **paper_cells(name)})
    return _order_columns(pd.DataFrame(rows), TABLE3_COLUMNS)


TABLE4_COLUMNS = [*ABLATION_COLUMNS, "paper_f_bcubed"]  # Table 4 quotes F_B too


def table4(measured: Mapping[str, Mapping[str, Any] | None], paper_dir: Path = PAPER_DIR) -> pd.DataFrame:
    """Table 4 (WebFace42M protocol): methods on the second dataset's test part, the paper's values beside ours.

    Paper rows in the paper's order; measured methods without a Table 4 row go just before the paper's own method.
    """
    paper = read_paper("table4_webface42m.csv", paper_dir)

    def paper_cells(name: str) -> dict[str, Any]:
        r = paper.loc[name]
        return {f"paper_{c}": r[c] for c in ("precision", "recall", "f_pairwise", "f_bcubed")}

    by_paper_row = {method_info(m).paper_row: m for m in measured}
    extras = [m for m in measured if method_info(m).paper_row not in paper.index]
    rows: list[dict[str, Any]] = []
    for name in paper.index:
        if name == paper.index[-1]:
            rows += [_row3(m, measured[m], {}) for m in extras]
        if name in by_paper_row:
            rows.append(_row3(by_paper_row[name], measured[by_paper_row[name]], paper_cells(name)))
        else:
            rows.append({"method": name, "source": QUOTED, **paper_cells(name)})
    return _order_columns(pd.DataFrame(rows), TABLE4_COLUMNS)


def _row3(method: str, m: Mapping[str, Any] | None, paper_cells: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": display_name(method, m),
        "source": MEASURED,
        **_measured_cells(m),
        "note": _note(m),
        **paper_cells,
    }


TABLE3_COLUMNS = [*ABLATION_COLUMNS, "paper_time", "paper_source"]


def _order_columns(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    for c in columns:
        if c not in df.columns:
            df[c] = np.nan if c not in ("note", "paper_time", "paper_source", "source") else ""
    out = df[list(columns)].copy()
    for c in ("note", "paper_time", "paper_source"):
        if c in out.columns:
            out[c] = out[c].fillna("")
    return out


def table5(
    measured: Mapping[str, Mapping[str, Mapping[str, Any] | None]],
    subsets: Sequence[str],
    paper_dir: Path = PAPER_DIR,
) -> pd.DataFrame:
    """Table 5: F_P and F_B per scale, ours and the paper's, one row per method.

    ``measured`` maps method -> subset -> metrics dict. Paper values at 584K come from Table 3 (F_P only,
    the paper gives no BCubed there); larger scales from Table 5.
    """
    paper5 = read_paper("table5_scales.csv", paper_dir)
    paper3 = read_paper("table3_part1.csv", paper_dir)
    paper2 = read_paper("table2_refinement.csv", paper_dir)
    peers = read_paper("peers_ms1m.csv", paper_dir)
    rows: list[dict[str, Any]] = []

    def paper_pair(row: str | None, subset: str, peer_row: str | None = None) -> tuple[float, float]:
        size = MS1M_SIZES.get(subset)
        if size is not None and peer_row is not None and peer_row in peers.index:  # the peer's own paper, F_P and F_B
            return float(peers.loc[peer_row, f"fp_{size}"]), float(peers.loc[peer_row, f"fb_{size}"])
        if row is None or size is None:
            return np.nan, np.nan
        if size == "584K":  # the paper's part1 numbers are in Table 3 (Infomap alone: Table 2), F_P only
            for table in (paper3, paper2):
                if row in table.index:
                    return float(table.loc[row, "f_pairwise"]), np.nan
            return np.nan, np.nan
        if row in paper5.index:
            return float(paper5.loc[row, f"fp_{size}"]), float(paper5.loc[row, f"fb_{size}"])
        return np.nan, np.nan

    measured_rows = {method_info(m).paper_row: m for m in measured}
    names = list(paper5.index)
    extras = [m for m in measured if method_info(m).paper_row not in paper5.index]
    order: list[tuple[str, str | None]] = []  # (kind, key)
    for name in names:
        if name == names[-1]:
            order += [("measured", m) for m in extras]
        order.append(("measured", measured_rows[name]) if name in measured_rows else ("quoted", name))

    for kind, key in order:
        if kind == "measured":
            info = method_info(key)
            first = next((measured[key].get(s) for s in subsets if measured[key].get(s)), None)
            row: dict[str, Any] = {"method": display_name(key, first), "source": MEASURED}
            notes = []
            for s in subsets:
                m = measured[key].get(s)
                cells = _measured_cells(m)
                row[f"{s} F_P"] = cells.get("f_pairwise", np.nan)
                row[f"{s} F_B"] = cells.get("f_bcubed", np.nan)
                fp, fb = paper_pair(info.paper_row, s, info.peer_row)
                row[f"{s} paper F_P"], row[f"{s} paper F_B"] = fp, fb
                if _note(m):
                    notes.append(f"{s}: {_note(m)}")
            row["note"] = "; ".join(notes)
        else:
            row = {"method": key, "source": QUOTED}
            for s in subsets:
                row[f"{s} F_P"] = row[f"{s} F_B"] = np.nan
                row[f"{s} paper F_P"], row[f"{s} paper F_B"] = paper_pair(key, s)
            row["note"] = ""
        rows.append(row)
    return pd.DataFrame(rows)


def paper_header(subset: str) -> str:
    """Column header of a paper value: the MS1M size the paper measured it at."""
    return f"MS1M {MS1M_SIZES[subset]}" if subset in MS1M_SIZES else "n/a"


def to_markdown(df: pd.DataFrame, title: str, notes: Sequence[str]) -> str:
    """A Markdown table with a title and the notes that say what was measured and what is quoted."""
    # tabulate prints its missing-value mark only for None, so turn NaN into None first.
    cells = df.astype(object).where(df.notna(), None)
    body = cells.to_markdown(index=False, floatfmt=".2f", missingval="–")
    lines = [f"# {title}", "", body, ""]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, title: str) -> str:
    """A booktabs LaTeX tabular (no float wrapper, so a paper can \\input it)."""
    latex = df.to_latex(index=False, float_format="%.2f", na_rep="--", escape=True)
    return f"% {title}\n{latex}"


HTML_STYLE = """<style>
body { font-family: sans-serif; font-size: 13px; margin: 12px; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f4f6; }
.col0 { text-align: left; }
li { margin: 2px 0; max-width: 1100px; }
</style>"""
QUOTED_ROW_CSS = "color: #6b7280; font-style: italic"


def to_html(df: pd.DataFrame, title: str, notes: Sequence[str]) -> str:
    """A standalone HTML page of the table and its notes (what the Snakemake report shows inline); quoted rows
    are greyed and italic so they cannot be read as measured ones."""

    def grey_quoted(row: pd.Series) -> list[str]:
        return [QUOTED_ROW_CSS if row.get("source") == QUOTED else ""] * len(row)

    styler = df.style.set_uuid("t").apply(grey_quoted, axis=1).hide(axis="index")
    styler = styler.format(precision=2, na_rep="–", escape="html")
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{HTML_STYLE}'
        f"</head><body><h3>{html.escape(title)}</h3>\n{styler.to_html()}\n<ul>{items}</ul></body></html>\n"
    )


def write_table(df: pd.DataFrame, stem: str | Path, title: str, notes: Sequence[str]) -> None:
    """Write ``stem``.csv, .md, .tex and .html atomically."""
    stem = Path(stem)
    write_text(stem.with_suffix(".csv"), df.to_csv(index=False, float_format="%.4f"))
    write_text(stem.with_suffix(".md"), to_markdown(df, title, notes))
    write_text(stem.with_suffix(".tex"), to_latex(df, title))
    write_text(stem.with_suffix(".html"), to_html(df, title, notes))


@dataclass(frozen=True)
class _NoteContext:
    """What a table's notes are written from."""

    dataset: str
    source: str
    measured: Mapping[str, Mapping[str, Mapping[str, Any]]]
    subsets: Sequence[str]


def _measured_note(c: _NoteContext) -> str:
    sizes = {s: int(m["n_samples"]) for per in c.measured.values() for s, m in per.items() if m and "n_samples" in m}
    size_text = ", ".join(f"{s} = {sizes[s]:,} samples" for s in c.subsets if s in sizes)
    return f"Measured columns: this run on results/{c.dataset}/ ({size_text}). Precision, recall and F are percentages."


def _time_note(c: _NoteContext) -> str:
    knn_seconds: dict[str, float] = {}
    for per_subset in c.measured.values():
        for s, m in per_subset.items():
            if m and m.get("knn_seconds") is not None:
                knn_seconds[s] = max(knn_seconds.get(s, 0.0), float(m["knn_seconds"]))
    knn = f"; kNN build: {', '.join(f'{s} {t:.1f} s' for s, t in knn_seconds.items())}" if knn_seconds else ""
    return (
        "time_s: wall seconds of the clustering step alone on this machine (kNN build excluded, as the papers "
        f"report{knn})."
    )


def _quoted_ms1m_note(c: _NoteContext) -> str:
    return (
        "Columns named paper_* / 'paper' are QUOTED from CLIP-Cluster (ICCV 2023) on real MS1M "
        f"(part1 = 584K, {', '.join(f'{s} = {v}' for s, v in MS1M_SIZES.items() if s != 'part1')}), "
        "not measured here; Infomap alone is quoted from its Table 2. Rows with source 'quoted' are not run by "
        "this workflow."
    )


def _quoted_webface_note(c: _NoteContext) -> str:
    return (
        "Columns named paper_* are QUOTED from CLIP-Cluster (ICCV 2023) Table 4 on real WebFace42M (4M train, 4M "
        "test images, no identity overlap), not measured here. Rows with source 'quoted' are not run by this "
        "workflow."
    )


def _bcubed_at_part1_note(c: _NoteContext) -> str:
    return "The paper gives no BCubed F at 584K; its part1 F_P comes from Table 3."


def _peers_note(c: _NoteContext) -> str | None:
    peers = [m for m in c.measured if method_info(m).peer_row]
    if not peers:
        return None
    names = " and ".join(method_info(m).display for m in peers)
    return (
        f"{names}: trained on the training part and run by this workflow from their papers' method sections "
        "(clipcluster/peers/); their paper columns are QUOTED from each one's own MS1M table "
        "(workflow/resources/paper/peers_ms1m.csv)"
        + ("; MHC's Table 3 F_P is the one CLIP-Cluster's Table 3 quotes" if "mhc" in peers else "")
        + ". time_s is edge scoring + clustering (kNN excluded)."
    )


def _clipcluster_note(c: _NoteContext) -> str | None:
    if not any(m.startswith("clipcluster") for m in c.measured):
        return None
    return (
        "CLIP-Cluster rows: time_s is edge scoring + refinement on this machine (kNN excluded); the model was "
        "trained on the training part by this run (models/*.json hold the training time and losses)."
    )


def _twin_note(c: _NoteContext) -> str | None:
    if c.source != "twin":
        return None
    return (
        "The twin is a synthetic stand-in (MS1M- or WebFace-shaped preset; see twin_card.md): it shows whether "
        "a method exploits the structure the paper describes, not how it does on real faces."
    )


def _edge_auc(c: _NoteContext) -> str | None:
    return _edge_auc_note(c.measured, c.subsets)


def _thresholds(c: _NoteContext) -> str | None:
    return _threshold_note(c.measured, c.subsets)


_COMMON_HEAD = (_measured_note, _time_note)
_COMMON_TAIL = (_edge_auc, _thresholds, _twin_note)
# The notes under each table, in order; a note that returns None is left out.
TABLE_NOTES: dict[str, tuple[Any, ...]] = {
    "table1": (*_COMMON_HEAD, _quoted_ms1m_note, _clipcluster_note, *_COMMON_TAIL),
    "table2": (*_COMMON_HEAD, _quoted_ms1m_note, _clipcluster_note, *_COMMON_TAIL),
    "table3": (*_COMMON_HEAD, _quoted_ms1m_note, _peers_note, _clipcluster_note, *_COMMON_TAIL),
    "table4": (*_COMMON_HEAD, _quoted_webface_note, *_COMMON_TAIL),
    "table5": (*_COMMON_HEAD, _quoted_ms1m_note, _bcubed_at_part1_note, _peers_note, _clipcluster_note, *_COMMON_TAIL),
}


def table_notes(
    table: str,
    dataset: str,
    source: str,
    measured: Mapping[str, Mapping[str, Mapping[str, Any]]],
    subsets: Sequence[str],
) -> list[str]:
    """The notes under a table (:data:`TABLE_NOTES`): what was measured, on how many samples, where quoted numbers
    come from."""
    if table not in TABLE_NOTES:
        raise ValueError(f"no notes defined for table {table!r}; expected one of {sorted(TABLE_NOTES)}")
    ctx = _NoteContext(dataset, source, measured, subsets)
    return [note for make in TABLE_NOTES[table] if (note := make(ctx)) is not None]


def _threshold_note(measured: Mapping[str, Mapping[str, Mapping[str, Any]]], subsets: Sequence[str]) -> str | None:
    """Which thresholds the learned methods clustered with and where each came from (fixed, or the training part)."""
    cells = []
    for method, per_subset in measured.items():
        m = next((per_subset.get(s) for s in subsets if per_subset.get(s)), None)
        if not m or "tau_source" not in m:
            continue
        tau = (m.get("params") or {}).get("tau")
        source = "chosen on the training part" if m["tau_source"].startswith("chosen") else "fixed"
        cells.append(f"{method_info(method).display} tau {tau:g} ({source})")
    if not cells:
        return None
    return (
        "Thresholds: "
        + "; ".join(cells)
        + ". Chosen values come from the training part's own kNN graph over the grids of tuning.* "
        "(tuning/<method>.json): the best pairwise F for Infomap's floor and for CLIP-Cluster's tau before Infomap; "
        "for naive pruning, FaceT and MHC, whose kept links merge for good, the value keeping fewest links within one "
        "jackknife standard error of the best. No test part is used to choose anything."
    )


def _edge_auc_note(measured: Mapping[str, Mapping[str, Mapping[str, Any]]], subsets: Sequence[str]) -> str | None:
    """The learned edge scores' ROC AUC next to the raw cosine's (evaluation.edge_quality), where runs hold it."""
    cells, below = [], False
    for method, per_subset in measured.items():
        for s in subsets:
            auc = (per_subset.get(s) or {}).get("edge_auc") or {}
            if auc.get("auc_model") is not None:
                cells.append(f"{method_info(method).display} on {s} {auc['auc_model']:.3f} vs {auc['auc_cosine']:.3f}")
                below = below or auc["auc_model"] < auc["auc_cosine"]
    if not cells:
        return None
    verdict = (
        " Where a model is below the cosine, its scores rank edges worse than the input similarity, and its row's F "
        "owes itself to the clustering step that follows, not to better edges (docs/edge_quality.md)."
        if below
        else " Every model is above the cosine: its scores rank edges better than the input similarity."
    )
    return (
        "Edge scores vs raw cosine, ROC AUC over the kNN edges the model scored (same identity = positive): "
        + "; ".join(cells)
        + "."
        + verdict
    )
