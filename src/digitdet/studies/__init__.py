"""Studies that measure and compare trained models: `ablate` trains and scores config variants, `results`
writes their tables (CSV and Markdown), `sweep` scans reading settings over a trained model, `errors`
classifies and shows what a model reads wrong, and `demo` runs the README's end-to-end command. It may import
everything below it (ground floor, data, model, reading, training), never serve or cli.
"""
