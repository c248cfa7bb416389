# distillery: the OpenR1-Math recipe as one DAG.
#   snakemake --profile profiles/local          (laptop/CI: bundled sample, tiny models)
#   snakemake --profile profiles/slurm          (cluster)
# Each stage: rules/<stage>.smk -> src/distillery/stages/<stage>.py -> params.yaml `<stage>:`
#             -> data/<stage>/, metrics/<stage>.json, logs/<stage>/ -> dvc.yaml stage <stage>.

from snakemake.utils import min_version

from distillery.console import print_at_exit

min_version("9.0")


configfile: "params.yaml"


report: "report/workflow.rst"  # snakemake --profile profiles/local --report report.html


include: "rules/common.smk"
include: "rules/check_params.smk"  # what dvc repro runs first: the whole params.yaml validated
include: "rules/sample.smk"
include: "rules/ingest.smk"  # when ingest.corpora names a corpus
include: "rules/mix.smk"  # idem: verify and later stages then read mix's tables
include: "rules/models.smk"
include: "rules/generate.smk"
include: "rules/verify.smk"
include: "rules/judge.smk"
include: "rules/dedupe.smk"
include: "rules/build.smk"
include: "rules/curate.smk"
include: "rules/sft.smk"
include: "rules/preferences.smk"
include: "rules/dpo.smk"
include: "rules/difficulty.smk"  # the problems GRPO trains on, by pass rate
include: "rules/grpo.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/lighteval.smk"  # opt-in: snakemake --use-conda data/lighteval/results.json


# After a run, the stages' warnings and each failed job's own one-line message (with its log path)
# are the last lines on the console, not Snakemake's job dump (distillery.console).
onsuccess:
    print_at_exit(log, failed=False, workflow=workflow)


onerror:
    print_at_exit(log, failed=True, workflow=workflow)


rule all:
    input:
        rules.check_params.output,
        "data/build/dataset/README.md",
        "data/curate/selection.parquet",
        "data/sft/model",
        "data/dpo/model",
        "data/grpo/model",
        "metrics/evaluate.json",
        rules.report.output,
    default_target: True
