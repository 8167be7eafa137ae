// Package scienceqa reads the ScienceQA benchmark (Lu et al. 2022) and scores predictions exactly as its own
// evaluation does.
//
// # Data
//
// Two layouts are read into one [Problem] type:
//
//   - the official layout ([LoadOfficial]): problems.json (a map pid → problem; the file may have another name,
//     e.g. problems_test.json), pid_splits.json, images/<split>/<pid>/image.png and optionally captions.json
//     ({"captions": {pid: text}}). Image bytes stay on disk: a Problem holds only the path ([Image]).
//   - the Hugging Face parquet layout ([LoadParquet], [ReadParquet]): files <split>-*.parquet with the columns
//     image struct{bytes, path} (nullable), question, choices list<string>, answer int, hint, task, grade, subject,
//     topic, category, skill, lecture, solution. The image bytes are embedded and kept in memory. Such files carry
//     no pid: a row's pid is "<split>-<index>" (index counted from 0 over the split's files in name order), unless
//     the file has a "pid" column, which is used instead. Hugging Face's "validation" split is named "val" as in
//     the official layout.
//
// Every record is validated (at least two choices, answer index in range, a known split, the image file present
// when one is referenced). A failure is an error naming the file and the pid, or, with Options.Lenient, the record
// is skipped and counted in a [Report]. Missing metadata (grade, subject, ...) is allowed and stays empty: it is
// never guessed, and the categories that need it are computed over the problems that have it (n/a when none).
//
// # Prompts
//
// [Build] writes the prompt formats of ScienceQA's models/base_prompt.py (QCM-A, the LLaMA-Adapter paper's,
// CQM-A, QCM-LEA, QCML-A and the other input/output combinations of that file) with its exact spacing, and
// [Tokenize] turns a prompt into token ids and a loss mask following LLaMA-Adapter's finetuning code (see
// [Example]). The official LLaMA-Adapter ScienceQA training script was never released (OpenGVLab/LLaMA-Adapter
// issues #6, #62); its Alpaca finetuning code (alpaca_finetuning_v1/finetuning.py) is the reference for the
// mask, and it differs from this package in one point: it cuts sequences longer than max_seq_len at the end
// (possibly dropping the answer), while [Tokenize] shortens the context first and never cuts the question, the
// options or the answer. That released code also wraps every prompt in the Alpaca instruction template ("Below is
// an instruction that describes a task..."); whether the paper's ScienceQA runs did is not known, and this package
// writes base_prompt.py's text bare, as the paper describes its prompt.
//
// # Scoring
//
// [ExtractAnswer] applies run_gpt3.py's regular expression, [Resolver] its fallback for unparsable output (a
// random option, seeded) or counts it wrong, [ArgmaxLetter] picks the best option from per-letter scores, and
// [Score] computes the accuracy of each category of tools/evaluate_acc.py (NAT, SOC, LAN, TXT, IMG, NO, G1-6,
// G7-12, Avg). [Folds] assigns problems to k disjoint folds by a hash of the pid for local train/eval splits.
package scienceqa
