package main

import "io"

func runGenerate(stdout, stderr io.Writer, args []string) error { return usagef("not yet") }
func runNew(stdout, stderr io.Writer, args []string) error      { return usagef("not yet") }
