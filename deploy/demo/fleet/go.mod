module fleetdemo

go 1.22
