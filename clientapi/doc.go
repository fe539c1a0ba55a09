// Package clientapi is all of aula's HTTP: one route table (router.go), the
// adapters that authenticate requests and write results as JSON
// (handler.go), middleware, and one file of thin handlers per area of the
// Matrix client-server API. Handlers validate input, call a service and
// return a value or an error; they never write to the ResponseWriter.
package clientapi
