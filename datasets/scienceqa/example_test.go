package scienceqa_test

import (
	"fmt"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// The paper's QCM-A prompt: the test-time text ends with "Answer:"; training appends the target.
func ExampleBuild() {
	p := &scienceqa.Problem{PID: "7", Question: "Which word is a noun?", Choices: []string{"run", "table"}, Answer: 1,
		Hint: "Nouns name things."}
	pr, err := scienceqa.Build(p, scienceqa.QCMA, scienceqa.PromptOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s|%s\n", pr.Text, pr.Target)
	// Output:
	// Question: Which word is a noun?
	// Context: Nouns name things.
	// Options: (A) run (B) table
	// Answer:| The answer is B.
}

func ExampleResolver() {
	r := scienceqa.Resolver{Fallback: scienceqa.FallbackWrong}
	fmt.Println(r.Index("7", " The answer is B.", 2))
	fmt.Println(r.Index("7", "I am not sure", 2))
	// Output:
	// 1 true
	// -1 false
}
