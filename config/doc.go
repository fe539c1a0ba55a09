// Package config defines aula's configuration tree: its defaults, loading
// from a YAML file plus AULA_* environment variables, validation that reports
// every problem at once, and the commented YAML that generate-config prints.
package config
