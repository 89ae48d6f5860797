# Data stages: download -> prepare (normalize, filter, deduplicate, split) -> vocabularies.


# Cluster nodes often have no internet: downloads run on the submit host.
localrules:
    download,


rule download:
    output:
        "data/raw/{pair}.txt",
    params:
        url=lambda wc: corpus_url(wc.pair),
        member=lambda wc: corpus(wc.pair)["member"],
        sha256=lambda wc: corpus(wc.pair)["sha256"],
        retries=config["download"]["retries"],
        timeout=config["download"]["timeout"],
    log:
        "results/logs/download/{pair}.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/download.py"


rule prepare:
    input:
        raw="data/raw/{pair}.txt",
        code=package_sources("prepare"),
    output:
        train="results/{pair}/data/train.tsv",
        valid="results/{pair}/data/valid.tsv",
        test="results/{pair}/data/test.tsv",
        stats="results/{pair}/data/stats.json",
    params:
        settings=lambda wc: prepare_settings(wc.pair),
    log:
        "results/logs/prepare/{pair}.log",
    benchmark:
        "results/benchmarks/prepare/{pair}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/prepare.py"


rule vocab:
    input:
        train="results/{pair}/data/train.tsv",
        code=package_sources("vocab"),
    output:
        source="results/{pair}/vocab/source.json",
        target="results/{pair}/vocab/target.json",
    params:
        min_freq=config["vocab"]["min_freq"],
    log:
        "results/logs/vocab/{pair}.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/vocab.py"
