module kattle.dev/hack/pause

go 1.26.0
