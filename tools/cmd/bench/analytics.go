package main

import "context"

func benchAnalytics(ctx context.Context) error { return nil }
