// Command duomq is the single binary of duomq: every server component
// (broker, ...) and the operators' tools are its subcommands.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "duomq:", err)
		os.Exit(1)
	}
}
