# Plot data for `dvc plots` (plots/report/) and the figures and per-stage counts of `snakemake --report` (reports/).
REPORT_PLOTS = ["generation_lengths", "pass_rate_by_source", "verify_vs_judge", "eval_scores", "scaling_curve"]
from distillery.workflow import report_stage_metrics


rule report:
    input:
        judged="data/judge/judged.parquet",
        problems=PROBLEMS_TABLE,  # sample's, or mix's when ingest names a corpus
        stage_metrics=report_stage_metrics(PARAMS),  # every stage's rows: the counts table
        evaluate="metrics/evaluate.json",
        code=code_record("report"),  # what stands for its code (distillery.code_identity)
    output:
        plots=expand("plots/report/{plot}.json", plot=REPORT_PLOTS),
        generation_lengths=report("reports/figures/generation_lengths.svg", category="Generations", caption="../report/generation_lengths.rst", labels={"figure": "generation length histogram"}),
        pass_rate_by_source=report("reports/figures/pass_rate_by_source.svg", category="Verification", caption="../report/pass_rate_by_source.rst", labels={"figure": "pass rate by source"}),
        verify_vs_judge=report("reports/figures/verify_vs_judge.svg", category="Verification", caption="../report/verify_vs_judge.rst", labels={"figure": "math-verify vs judge"}),
        eval_scores=report("reports/figures/eval_scores.svg", category="Evaluation", caption="../report/eval_scores.rst", labels={"figure": "eval scores vs published"}),
        scaling_curve=report("reports/figures/scaling_curve.svg", category="Evaluation", caption="../report/scaling_curve.rst", labels={"figure": "test-time scaling (budget forcing)"}),
        stage_counts=report("reports/stage_counts.html", category="Rows per stage", caption="../report/stage_counts.rst", labels={"table": "rows in, kept, rejected by reason"}),
    params:
        config=lambda wildcards: stage_json("report"),
        plots_dir=lambda wildcards, output: Path(output.plots[0]).parent,
        figures_dir=lambda wildcards, output: Path(output.generation_lengths).parent,
    log:
        "logs/report/report.log",
    benchmark:
        "logs/report/report.benchmark.tsv"
    conda:
        "../envs/cpu.yaml"
    shell:
        "distillery report --config {params.config:q} --judged {input.judged:q} --problems {input.problems:q} "
        "--evaluate {input.evaluate:q} --stage-metrics {input.stage_metrics:q} --plots-dir {params.plots_dir:q} "
        "--figures-dir {params.figures_dir:q} --stage-counts {output.stage_counts:q} > {log:q} 2>&1"
