"""Pipeline plumbing, apart from the model code: running a stage as a Snakemake job (:mod:`.jobs`), which package
files a stage runs (:mod:`.dependencies`, so that editing one reruns its rules), releasing the locks of a killed
run (:mod:`.runlock`), and command-line mistakes caught early (:mod:`.invocation`)."""
