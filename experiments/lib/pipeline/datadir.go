package pipeline

// -data, -problems and -splits are bound so that the inputs follow -data: a preset's problems and splits files
// (the stories260K preset pins the shared test files) are dropped when -data names another folder, unless
// -problems or -splits is given too, in either order (flagScratch records which were given).

type dataDirFlag struct {
	d *DataConfig
	s *flagScratch
}

func (v dataDirFlag) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.Dir
}

func (v dataDirFlag) Set(s string) error {
	v.d.Dir = s
	if !v.s.problemsGiven {
		v.d.ProblemsFile = ""
	}
	if !v.s.splitsGiven {
		v.d.SplitsFile = ""
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
