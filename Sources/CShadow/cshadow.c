#include "cshadow.h"
