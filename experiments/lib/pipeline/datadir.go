package pipeline

import "flag"

// dataFlags binds -data, -problems and -splits so that the inputs follow -data: a preset's problems and splits
// files (the stories260K preset pins the shared test files) are dropped when -data names another folder, unless
// -problems or -splits is given too, in either order.
type dataFlags struct {
	d                          *DataConfig
	problemsGiven, splitsGiven bool
}

type dataDirFlag struct{ f *dataFlags }

func (v dataDirFlag) String() string {
	if v.f == nil {
		return ""
	}
	return v.f.d.Dir
}

func (v dataDirFlag) Set(s string) error {
	v.f.d.Dir = s
	if !v.f.problemsGiven {
		v.f.d.ProblemsFile = ""
	}
	if !v.f.splitsGiven {
		v.f.d.SplitsFile = ""
	}
	return nil
}

type dataFileFlag struct {
	dst   *string
	given *bool
}

func (v dataFileFlag) String() string {
	if v.dst == nil {
		return ""
	}
	return *v.dst
}

func (v dataFileFlag) Set(s string) error {
	*v.dst, *v.given = s, true
	return nil
}

func bindDataFlags(fs *flag.FlagSet, d *DataConfig) {
	f := &dataFlags{d: d}
	fs.Var(dataDirFlag{f}, "data", "data folder or file: official layout (problems.json, pid_splits.json, images/), Hugging Face "+
		"parquet files (<split>-*.parquet, or data/ of a snapshot) or one .parquet file; -problems and -splits default to its files")
	fs.Var(dataFileFlag{&d.ProblemsFile, &f.problemsGiven}, "problems", "problems JSON file; empty: the one in -data")
	fs.Var(dataFileFlag{&d.SplitsFile, &f.splitsGiven}, "splits", "pid_splits.json; empty: the one in -data")
}
