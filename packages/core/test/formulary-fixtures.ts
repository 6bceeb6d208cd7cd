import { parseFormulary, type Formulary, type Medicine } from '../src/prescribing/formulary.ts';
import manifest from '../../../formularies/sample/manifest.json';
import antimicrobials from '../../../formularies/sample/medicines-antimicrobials.json';
import painAndSedation from '../../../formularies/sample/medicines-pain-and-sedation.json';
import other from '../../../formularies/sample/medicines-other.json';

/** The sample formulary as the server's loader puts it together: the manifest and every medicines file. */
export function sampleFormulary(): Formulary {
  return parseFormulary({
    ...manifest,
    medicines: [...antimicrobials.medicines, ...painAndSedation.medicines, ...other.medicines],
  });
}

/** A medicine of the sample by name and form ("Amoxicillin", "capsule"). */
export function sampleMedicine(formulary: Formulary, name: string, form: string): Medicine {
  const m = formulary.medicines.find((x) => x.name === name && x.form === form);
  if (!m) throw new Error(`no ${name} ${form} in the sample formulary`);
  return m;
}
