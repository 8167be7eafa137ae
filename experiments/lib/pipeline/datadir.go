package pipeline

import "flag"

// -data, -problems and -splits are bound so that the inputs follow -data: a preset's problems and splits files
// (the stories260K preset pins the shared test files) are dropped when -data names another folder, unless
// -problems or -splits is given too, in either order (flagScratch records which were given).

// dataDirFlag is -data: it sets d.Dir and drops the problems and splits files not given as flags.
func dataDirFlag(d *DataConfig, s *flagScratch) flag.Value {
	return coupledFlag{&d.Dir, func() {
		if !s.problemsGiven {
			d.ProblemsFile = ""
		}
		if !s.splitsGiven {
			d.SplitsFile = ""
		}
	}}
}

// dataFileFlag is -problems or -splits: it sets *dst and records in *given that the flag was given.
func dataFileFlag(dst *string, given *bool) flag.Value {
	return coupledFlag{dst, func() { *given = true }}
}

// coupledFlag is a string flag whose Set also runs onSet, for flags that act on each other.
type coupledFlag struct {
	dst   *string
	onSet func()
}

func (v coupledFlag) String() string {
	if v.dst == nil { // the zero value flag.PrintDefaults makes to detect defaults
		return ""
	}
	return *v.dst
}

func (v coupledFlag) Set(s string) error {
	*v.dst = s
	v.onSet()
	return nil
}
