rule difficulty:
    input:
        **declared_inputs("difficulty"),  # the dataset's splits, model (a local one), code
    output:
        **declared_outputs("difficulty"),  # kept, rejected, pass_rates, metrics (+ headline)
    params:
        # The samples are scored by GRPO's accuracy reward: verify's settings, its word golds.
        config=lambda wildcards: stage_json(
            "difficulty", verify=PARAMS.verify.model_dump(mode="json"), word_golds=PARAMS.grpo.rewards.accuracy.word_golds
        ),
        # A server started by the job (difficulty.llm.serve) logs here. The journal is
        # $DISTILLERY_JOURNAL_DIR/difficulty: outside the DAG, so where it lives is not a param.
        server_logs="logs/difficulty/servers",
    log:
        "logs/difficulty/difficulty.log",
    benchmark:
        "logs/difficulty/difficulty.benchmark.tsv"
    threads: 2
    conda:
        "../envs/generate.yaml"
    shell:
        declared_shell("difficulty")
