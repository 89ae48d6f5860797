# Data stages: download -> prepare (normalize, filter, deduplicate, split) -> vocabularies.


# Cluster nodes often have no internet: downloads run on the submit host.
localrules:
    download,


rule download:
    input:
        code=package_sources("download"),
        corpus=lambda wc: local_corpus(wc.pair),
    output:
        raw="data/raw/{pair}.txt",
    log:
        "results/logs/download/{pair}.log",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: rule_param(download_settings(wc.pair)),
    script:
        "../scripts/stage.py"


rule prepare:
    input:
        raw="data/raw/{pair}.txt",
        code=package_sources("prepare"),
    output:
        train="results/{pair}/data/train.tsv",
        valid="results/{pair}/data/valid.tsv",
        test="results/{pair}/data/test.tsv",
        stats="results/{pair}/data/stats.json",
    log:
        "results/logs/prepare/{pair}.log",
    benchmark:
        "results/benchmarks/prepare/{pair}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: rule_param(prepare_settings(wc.pair)),
    script:
        "../scripts/stage.py"


rule vocab:
    input:
        train="results/{pair}/data/train.tsv",
        code=package_sources("vocab"),
    output:
        **vocab_files("{pair}"),
    log:
        "results/logs/vocab/{pair}.log",
    benchmark:
        "results/benchmarks/vocab/{pair}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=rule_param(settings.vocab_settings(config)),
    script:
        "../scripts/stage.py"
