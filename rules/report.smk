# Plot data for `dvc plots` (plots/report/) and the figures and per-stage counts of `snakemake --report`
# (reports/). How `snakemake --report` files each output, by its declared name (distillery/config/report.py).
REPORTED = {
    "generation_lengths_figure": dict(category="Generations", caption="../report/generation_lengths.rst", labels={"figure": "generation length histogram"}),
    "pass_rate_by_source_figure": dict(category="Verification", caption="../report/pass_rate_by_source.rst", labels={"figure": "pass rate by source"}),
    "verify_vs_judge_figure": dict(category="Verification", caption="../report/verify_vs_judge.rst", labels={"figure": "math-verify vs judge"}),
    "eval_scores_figure": dict(category="Evaluation", caption="../report/eval_scores.rst", labels={"figure": "eval scores vs published"}),
    "scaling_curve_figure": dict(category="Evaluation", caption="../report/scaling_curve.rst", labels={"figure": "test-time scaling (budget forcing)"}),
    "stage_counts": dict(category="Rows per stage", caption="../report/stage_counts.rst", labels={"table": "rows in, kept, rejected by reason"}),
}


rule report:
    input:
        **declared_inputs("report"),  # judged, problems, stage_metrics (every stage's rows: the counts table), evaluate, code
    output:
        **declared_outputs("report", reported=REPORTED),  # the figures, stage_counts, the plot data
    params:
        config=lambda wildcards: stage_json("report"),
        plots_dir=lambda wildcards, output: Path(output.generation_lengths).parent,
        figures_dir=lambda wildcards, output: Path(output.generation_lengths_figure).parent,
    log:
        "logs/report/report.log",
    benchmark:
        "logs/report/report.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        declared_shell("report")
