//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNotLinux = errors.New("verifybench: CPU times come from /proc, so the " +
	"benchmark runs on Linux only")

func processCPUTime(int) (time.Duration, error) { return 0, errNotLinux }

func selfCPUTime() (time.Duration, error) { return 0, errNotLinux }

func machineCPUTime() (time.Duration, error) { return 0, errNotLinux }
