

USD/JPYЂ°…вњбА»НЭт2АЎИсы2"fallback