# Training: one job per {pair} x {model}; GPU when present.


rule train:
    input:
        train="results/{pair}/data/train.tsv",
        valid="results/{pair}/data/valid.tsv",
        source_vocab="results/{pair}/vocab/source.json",
        target_vocab="results/{pair}/vocab/target.json",
        code=package_sources("train"),
    output:
        model="results/{pair}/{model}/model.pt",
        last="results/{pair}/{model}/last.pt",
        history=report(
            "results/{pair}/{model}/history.tsv",
            caption="../report/history.rst",
            category="Training",
            subcategory="{pair}",
            labels={"pair": "{pair}", "model": "{model}", "file": "history"},
        ),
    params:
        model=lambda wc: model_settings(wc.model),
        training=lambda wc: training_settings(wc.model),
        # Not an output: Snakemake deletes outputs before a job reruns, and this file must survive
        # a killed job so that the next run resumes from it.
        resume="results/{pair}/{model}/resume.pt",
        metadata=lambda wc: {
            "pair": wc.pair,
            "model_name": wc.model,
            "normalization": config["prepare"]["normalization"],
        },
    threads: config["resources"]["train"]["threads"]
    resources:
        gpu=config["resources"]["train"]["gpu"],
        mem_mb=config["resources"]["train"]["mem_mb"],
        runtime=config["resources"]["train"]["runtime"],
    log:
        "results/logs/train/{pair}-{model}.log",
    benchmark:
        "results/benchmarks/train/{pair}-{model}.tsv"
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train.py"
