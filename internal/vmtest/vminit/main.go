// Command vminit is /init in the initramfs of fentrygen's test VMs; see
// package internal/vminit.
package main

import "github.com/fentrygen/fentrygen/internal/vminit"

func main() { vminit.Main() }
