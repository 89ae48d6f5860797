# Training: one job per {pair} x {run} (a model of the config with one of its seeds); GPU when present.


rule train:
    input:
        train="results/{pair}/data/train.tsv",
        valid="results/{pair}/data/valid.tsv",
        source_vocab="results/{pair}/vocab/source.json",
        target_vocab="results/{pair}/vocab/target.json",
        code=package_sources("train"),
    output:
        model="results/{pair}/{run}/model.pt",
        last="results/{pair}/{run}/last.pt",
        history=report(
            "results/{pair}/{run}/history.tsv",
            caption="../report/history.rst",
            category="Training",
            subcategory="{pair}",
            labels={"pair": "{pair}", "run": "{run}", "file": "history"},
        ),
    log:
        "results/logs/train/{pair}/{run}.log",
    benchmark:
        "results/benchmarks/train/{pair}/{run}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        gpu=config["resources"]["train"]["gpu"],
        mem_mb=config["resources"]["train"]["mem_mb"],
        runtime=config["resources"]["train"]["runtime"],
    params:
        model=lambda wc: rule_param(model_settings(wc.run)),
        training=lambda wc: rule_param(training_settings(wc.run)),
        # Not an output: Snakemake deletes outputs before a job reruns, and this file must survive
        # a killed job so that the next run resumes from it.
        resume="results/{pair}/{run}/resume.pt",
        metadata=lambda wc: {
            "pair": wc.pair,
            "model_name": RUNS[wc.run].model,
            "normalization": config["prepare"]["normalization"],
        },
    script:
        "../scripts/stage.py"
