
invalid_field$limit 1001 is out of range [1, 1000]limit