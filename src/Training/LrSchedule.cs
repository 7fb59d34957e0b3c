using ResnetMnist.Config;

namespace ResnetMnist.Training;

/// <summary>
/// The learning rate as a pure function of position, so that a resumed run gets the same values as an
/// uninterrupted one. Closed forms of PyTorch's StepLR and CosineAnnealingLR (stepped per epoch) and OneCycleLR
/// (stepped per batch, cosine annealing, div_factor 25, final_div_factor 1e4).
/// </summary>
public static class LrSchedule
{
    /// <param name="epoch">0-based epoch.</param>
    /// <param name="step">0-based step over the whole run (used by onecycle).</param>
    /// <param name="totalSteps">Steps in the whole run.</param>
    public static double At(TrainingConfig cfg, int epoch, long step, long totalSteps)
    {
        double lr = cfg.Optimizer.Lr;
        var s = cfg.Scheduler;
        switch (s.Name)
        {
            case "none":
                return lr;
            case "step":
                return lr * Math.Pow(s.Gamma, epoch / s.StepSize);
            case "cosine":
                int tMax = s.TMax ?? cfg.Train.Epochs;
                return s.EtaMin + (lr - s.EtaMin) * (1 + Math.Cos(Math.PI * epoch / tMax)) / 2;
            case "onecycle":
                double maxLr = s.MaxLr ?? lr * 10, initial = maxLr / 25, min = initial / 1e4;
                double up = s.PctStart * totalSteps - 1, end = totalSteps - 1;
                if (step <= up) return Cos(initial, maxLr, up <= 0 ? 1 : step / up);
                return Cos(maxLr, min, (step - up) / Math.Max(1e-12, end - up));
            default:
                throw new ArgumentException($"unknown scheduler '{s.Name}'");
        }
    }

    static double Cos(double start, double end, double pct) => end + (start - end) / 2 * (Math.Cos(Math.PI * Math.Clamp(pct, 0, 1)) + 1);
}
