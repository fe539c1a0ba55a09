package storage_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage/storagetest"
)

func TestTmpFilterRace(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := db.PutFilter(t.Context(), "@a:x", []byte(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	})
}
